//! Structure snapshots as insta snapshot files.
//!
//! `snapshots/<name>.snap` is a real insta snapshot: a YAML header between `---` lines,
//! then the rendered [`Structure`]. insta reads it (`insta::Snapshot::from_file`),
//! `cargo insta review` and `cargo insta accept` handle the `<name>.snap.new` files
//! wsreplay writes for a changed structure, and the Rust tests in `tests/` assert
//! against the same files with `insta::assert_snapshot!`.

use std::path::{Path, PathBuf};

use crate::structure::Structure;

/// Why a snapshot could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path}: not a readable insta snapshot: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: {source}. Regenerate it with `wsreplay snapshot RECORDING`")]
    Parse {
        path: PathBuf,
        #[source]
        source: crate::structure::render::ParseError,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The snapshot name of a recording: its file stem (`recordings/checkout.jsonl` or
/// `recordings/checkout.jsonl.zst` → `checkout`).
pub fn name_of(recording: &Path) -> String {
    crate::recording::stem_of(recording)
}

/// `DIR/<name>.snap`.
pub fn path_for(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.snap"))
}

/// `DIR/<name>.snap.new`, the file `cargo insta review` picks up.
pub fn new_path_for(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.snap.new"))
}

/// Reads a snapshot's body through insta; `None` when the file does not exist.
pub fn read(path: &Path) -> Result<Option<String>, SnapshotError> {
    if !path.exists() {
        return Ok(None);
    }
    // insta's YAML reader panics on some malformed headers (found by fuzzing:
    // `+.INF\0`); a hostile file must give an error, not a crash.
    let read = std::panic::catch_unwind(|| insta::Snapshot::from_file(path)).map_err(|_| {
        SnapshotError::Read {
            path: path.to_owned(),
            reason: "its header is not valid insta YAML".into(),
        }
    })?;
    let snapshot = read.map_err(|e| SnapshotError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    match snapshot.contents() {
        insta::internals::SnapshotContents::Text(text) => Ok(Some(text.to_string())),
        _ => Err(SnapshotError::Read {
            path: path.to_owned(),
            reason: "a binary snapshot, not a structure snapshot".into(),
        }),
    }
}

/// Reads and parses a structure snapshot.
pub fn read_structure(path: &Path) -> Result<Option<Structure>, SnapshotError> {
    read(path)?
        .map(|text| {
            Structure::parse(&text).map_err(|source| SnapshotError::Parse {
                path: path.to_owned(),
                source,
            })
        })
        .transpose()
}

/// Writes a snapshot file: insta's header (`source` names the recording, `expression`
/// how to regenerate it) and the body.
pub fn write(path: &Path, recording: &Path, body: &str) -> Result<(), SnapshotError> {
    let text = format!(
        "---\nsource: {}\nexpression: {}\n---\n{}\n",
        yaml_scalar(&recording.display().to_string()),
        yaml_scalar(&format!("wsreplay snapshot {}", recording.display())),
        body.trim_end()
    );
    let err = |source| SnapshotError::Write {
        path: path.to_owned(),
        source,
    };
    crate::files::replace(path, text.as_bytes(), false).map_err(err)
}

/// A YAML scalar: plain when safe, else double-quoted (JSON strings are valid YAML).
fn yaml_scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " _-./".contains(c))
        && !s.starts_with([' ', '-'])
        && !s.ends_with(' ');
    if plain {
        s.to_string()
    } else {
        serde_json::Value::String(s.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the snapshot-reader fuzz target: insta's YAML reader panics on this
    /// header; reading it must be an error naming the file.
    #[test]
    fn a_header_that_crashes_insta_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.snap");
        std::fs::write(
            &path,
            "---\n+.INF\0\n               2 object\npayload.agent_dataco\n\n#",
        )
        .unwrap();
        let err = read_structure(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}: not a readable insta snapshot",
                path.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn written_snapshots_are_read_back_by_insta() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "checkout");
        let body = "## route f\n\n### c2s chat ×1\ntype  \"chat\"\n\n### sequences\n×1 c2s chat\n";
        write(&path, Path::new("recordings/check out: v2.jsonl"), body).unwrap();
        assert_eq!(read(&path).unwrap().unwrap(), body.trim_end());
        let meta = insta::Snapshot::from_file(&path).unwrap();
        assert_eq!(
            meta.metadata().source(),
            Some("recordings/check out: v2.jsonl")
        );
        assert_eq!(read_structure(&path).unwrap().unwrap().render(), body);
        assert_eq!(read(&dir.path().join("missing.snap")).unwrap(), None);
    }
}
