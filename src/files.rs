//! The files wsreplay writes, written safely: a report or snapshot is replaced whole
//! (written beside its destination, then renamed over it), so a reader never sees half
//! of one and a symlink at the destination is replaced, never followed; a recording is
//! a new file only its owner can read (0600), whatever stood at its path before.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temporary file in the same directory (mode
/// 0600 for `private`, else the usual 0644 under the umask), renamed over `path`.
pub fn replace(path: &Path, bytes: &[u8], private: bool) -> io::Result<()> {
    replace_with(path, private, |out| out.write_all(bytes))
}

/// Like [`replace`], with the content written by `write`. A destination that is a
/// device or a pipe (`/dev/stdout`, a FIFO) is written to as it is.
pub fn replace_with(
    path: &Path,
    private: bool,
    write: impl FnOnce(&mut io::BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        let mut out = io::BufWriter::new(std::fs::OpenOptions::new().write(true).open(path)?);
        write(&mut out)?;
        return out.flush();
    }
    let dir = parent(path);
    std::fs::create_dir_all(&dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let file = create_new(&temp, if private { 0o600 } else { 0o644 })?;
        let mut out = io::BufWriter::new(file);
        write(&mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Creates a new file at `path` that only its owner can read, for a recording that is
/// written as it happens: a regular file or a symlink that stood there is removed
/// first, never written through. A device or a pipe (`/dev/null`, a FIFO a reader waits
/// on) is opened as it is.
pub fn create_private(path: &Path) -> io::Result<File> {
    std::fs::create_dir_all(parent(path))?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory",
        )),
        Ok(meta) if meta.is_file() || meta.is_symlink() => {
            std::fs::remove_file(path)?;
            create_new(path, 0o600)
        }
        Ok(_) => std::fs::OpenOptions::new().write(true).open(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_new(path, 0o600),
        Err(e) => Err(e),
    }
}

fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn outputs_replace_a_symlink_instead_of_writing_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        let out = dir.path().join("report.html");
        symlink(&victim, &out).unwrap();
        replace(&out, b"report", false).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "report");
        assert!(!std::fs::symlink_metadata(&out).unwrap().is_symlink());
        // Nothing is left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        // A device is written to, not replaced.
        replace(Path::new("/dev/null"), b"x", false).unwrap();
        assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
    }

    #[test]
    fn a_recording_is_private_whatever_stood_at_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("rec.jsonl");
        std::fs::write(&out, "old").unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(create_private(&out).unwrap());
        assert_eq!(mode(&out), 0o600);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "");

        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        let link = dir.path().join("link.jsonl");
        symlink(&victim, &link).unwrap();
        drop(create_private(&link).unwrap());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        assert_eq!(mode(&link), 0o600);

        replace(&dir.path().join("p"), b"x", true).unwrap();
        assert_eq!(mode(&dir.path().join("p")), 0o600);
    }
}
