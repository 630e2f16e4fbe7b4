//! `wsreplay review`: accepting or rejecting pending snapshots without cargo-insta.
//!
//! `check` writes a changed structure as `snapshots/<name>.snap.new` beside the reviewed
//! `<name>.snap`. In a Rust project `cargo insta review` handles those files; everywhere
//! else (a Python or Node project has no `Cargo.toml`, which cargo-insta needs) this
//! module does the same job: it shows each pending snapshot's semantic summary and
//! unified diff and asks, or accepts or rejects them all.

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use crate::structure::diff::{compare, routes_of, unified_diff};
use crate::structure::snapshot::{self, SnapshotError};
use crate::text::printable;

/// What to do with the pending snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Ask for each one.
    Ask,
    Accept,
    Reject,
}

/// How many snapshots were accepted, rejected and left pending.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reviewed {
    pub accepted: Vec<String>,
    pub rejected: Vec<String>,
    pub skipped: Vec<String>,
}

/// Why a review could not be done.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("cannot list {dir}: {source}")]
    List { dir: PathBuf, source: io::Error },
    #[error("cannot {what} {path}: {source}")]
    File {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("no pending snapshot named {0:?} in the snapshots directory (pending: {1})")]
    Unknown(String, String),
}

/// The names of the pending snapshots (`<name>.snap.new`) in `dir`, sorted.
pub fn pending(dir: &Path) -> Result<Vec<String>, ReviewError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ReviewError::List {
                dir: dir.to_owned(),
                source,
            })
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".snap.new").map(str::to_string)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Reviews the pending snapshots of `dir` (only those in `only`, when given): asks on
/// `input`/`output` for each, or applies `decision` to all.
pub fn review(
    dir: &Path,
    only: &[String],
    decision: Decision,
    input: &mut impl BufRead,
    output: &mut impl Write,
    color: bool,
) -> Result<Reviewed, ReviewError> {
    let all = pending(dir)?;
    if let Some(missing) = only.iter().find(|n| !all.contains(n)) {
        return Err(ReviewError::Unknown(missing.clone(), all.join(", ")));
    }
    let names: Vec<String> = all
        .into_iter()
        .filter(|n| only.is_empty() || only.contains(n))
        .collect();
    let mut done = Reviewed::default();
    for (i, name) in names.iter().enumerate() {
        let choice = match decision {
            Decision::Accept => 'a',
            Decision::Reject => 'r',
            Decision::Ask => {
                let _ = writeln!(
                    output,
                    "\n[{}/{}] {}",
                    i + 1,
                    names.len(),
                    describe(dir, name, color)?
                );
                ask(input, output)
            }
        };
        let (old, new) = (
            snapshot::path_for(dir, name),
            snapshot::new_path_for(dir, name),
        );
        match choice {
            'a' => {
                std::fs::rename(&new, &old).map_err(|source| ReviewError::File {
                    what: "accept",
                    path: new.clone(),
                    source,
                })?;
                done.accepted.push(name.clone());
            }
            'r' => {
                std::fs::remove_file(&new).map_err(|source| ReviewError::File {
                    what: "remove",
                    path: new.clone(),
                    source,
                })?;
                done.rejected.push(name.clone());
            }
            _ => done.skipped.push(name.clone()),
        }
    }
    Ok(done)
}

/// The summary and diff of one pending snapshot against the reviewed one.
fn describe(dir: &Path, name: &str, color: bool) -> Result<String, ReviewError> {
    let old_path = snapshot::path_for(dir, name);
    let new_path = snapshot::new_path_for(dir, name);
    let new = snapshot::read_structure(&new_path)?.unwrap_or_default();
    let Some(old) = snapshot::read_structure(&old_path)? else {
        return Ok(format!(
            "{}: new snapshot (nothing reviewed yet)\n{}",
            new_path.display(),
            printable(&new.render())
        ));
    };
    let mut out = format!("{} → {}\n", new_path.display(), old_path.display());
    for d in compare(&old, &new, &routes_of(&old, &new)) {
        for line in &d.summary {
            out += &format!("  - {}\n", printable(line));
        }
    }
    out += &unified_diff(&old.render(), &new.render(), color);
    Ok(out)
}

/// Reads one answer: `a` accept, `r` reject, `s` (or end of input) skip.
fn ask(input: &mut impl BufRead, output: &mut impl Write) -> char {
    loop {
        let _ = write!(output, "accept (a), reject (r) or skip (s)? ");
        let _ = output.flush();
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => return 's',
            Ok(_) => {}
        }
        match line.trim().chars().next().map(|c| c.to_ascii_lowercase()) {
            Some(c @ ('a' | 'r' | 's')) => return c,
            _ => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let body = |t: &str| {
            format!("## route f\n\n### s2c {t} ×1\ntype  \"{t}\"\n\n### sequences\n×1 s2c {t}\n")
        };
        let rec = Path::new("recordings/x.jsonl");
        snapshot::write(&snapshot::path_for(dir.path(), "a"), rec, &body("old")).unwrap();
        snapshot::write(&snapshot::new_path_for(dir.path(), "a"), rec, &body("new")).unwrap();
        snapshot::write(&snapshot::new_path_for(dir.path(), "b"), rec, &body("b")).unwrap();
        dir
    }

    #[test]
    fn answers_accept_reject_and_skip() {
        let dir = project();
        let mut out = Vec::new();
        let mut input = io::Cursor::new("x\na\n");
        let done = review(dir.path(), &[], Decision::Ask, &mut input, &mut out, false).unwrap();
        assert_eq!(done.accepted, ["a"]);
        assert_eq!(done.skipped, ["b"], "end of input skips the rest");
        let shown = String::from_utf8(out).unwrap();
        assert!(
            shown.contains("[1/2]") && shown.contains("-### s2c old ×1"),
            "{shown}"
        );
        assert!(shown.contains("+### s2c new ×1"), "{shown}");
        assert!(
            shown.contains("[2/2]") && shown.contains("new snapshot"),
            "{shown}"
        );
        let accepted = snapshot::read(&snapshot::path_for(dir.path(), "a"))
            .unwrap()
            .unwrap();
        assert!(accepted.contains("s2c new"));
        assert_eq!(pending(dir.path()).unwrap(), ["b"]);

        let done = review(
            dir.path(),
            &["b".into()],
            Decision::Reject,
            &mut io::empty(),
            &mut Vec::new(),
            false,
        )
        .unwrap();
        assert_eq!(done.rejected, ["b"]);
        assert!(pending(dir.path()).unwrap().is_empty());
        assert!(!snapshot::path_for(dir.path(), "b").exists());
    }

    #[test]
    fn an_unknown_name_lists_the_pending_ones() {
        let dir = project();
        let err = review(
            dir.path(),
            &["c".into()],
            Decision::Accept,
            &mut io::empty(),
            &mut Vec::new(),
            false,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "no pending snapshot named \"c\" in the snapshots directory (pending: a, b)"
        );
    }
}
