//! Rotation of long recordings (`record --rotate SIZE|DURATION`): when to start a new
//! file, and its name (the base name with the file's start time,
//! `recordings/staging-20261125T211500Z.jsonl[.zst]`). Each file stands alone: the
//! writer ([`super::sink`]) ends one with its `finish` record and starts the next with a
//! header and a `continued` copy of the `open` record of every connection still open.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

/// When a recording moves on to a new file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotate {
    /// Once the file holds this many bytes (as written to disk, compressed or not).
    Size(u64),
    /// Once the file has been written to for this long.
    Every(Duration),
}

impl FromStr for Rotate {
    type Err = String;

    /// `500KB`, `1MB`, `2GB` (powers of 1024; a bare number is bytes), or `30s`,
    /// `10m`, `1h`.
    fn from_str(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let n: u64 = number.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            format!("{text:?}: give a size such as 500KB or 1MB, or a duration such as 10m or 1h")
        })?;
        let size = |k: u64| Ok(Rotate::Size(n.saturating_mul(k)));
        let every = |k: u64| Ok(Rotate::Every(Duration::from_secs(n.saturating_mul(k))));
        match unit.to_ascii_lowercase().as_str() {
            "" | "b" => size(1),
            "kb" | "k" | "kib" => size(1 << 10),
            "mb" | "mib" => size(1 << 20),
            "gb" | "g" | "gib" => size(1 << 30),
            "s" => every(1),
            "m" => every(60),
            "h" => every(3600),
            _ => Err(format!(
                "{text:?}: unknown unit {unit:?}; sizes are KB, MB, GB and durations s, m, h (500KB, 10m)"
            )),
        }
    }
}

impl Rotate {
    /// Whether a file of `bytes` bytes, written to for `elapsed`, is due to rotate.
    pub fn due(self, bytes: u64, elapsed: Duration) -> bool {
        match self {
            Rotate::Size(limit) => bytes >= limit,
            Rotate::Every(every) => elapsed >= every,
        }
    }
}

/// The name of the rotated file of `base` that starts at `at`: `DIR/NAME-<UTC
/// time>.jsonl[.zst]` (a `-2`, `-3`, ... is added when that name is taken, as when
/// small files rotate within one second).
pub fn path_for(base: &Path, at: SystemTime) -> PathBuf {
    let stem = super::stem_of(base);
    let compressed = super::source::is_compressed_name(base);
    let dir = base.parent().unwrap_or(Path::new(""));
    let at = time::OffsetDateTime::from(at);
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    (1..)
        .map(|n| {
            let name = match n {
                1 => format!("{stem}-{stamp}"),
                n => format!("{stem}-{stamp}-{n}"),
            };
            dir.join(super::source::file_name(&name, compressed))
        })
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .expect("some numbered name is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse_and_bad_ones_say_what_to_write() {
        assert_eq!("1MB".parse(), Ok(Rotate::Size(1 << 20)));
        assert_eq!("500KB".parse(), Ok(Rotate::Size(500 << 10)));
        assert_eq!("10m".parse(), Ok(Rotate::Every(Duration::from_secs(600))));
        assert_eq!("1h".parse(), Ok(Rotate::Every(Duration::from_secs(3600))));
        assert!("0MB".parse::<Rotate>().is_err());
        assert!("1 parsec".parse::<Rotate>().unwrap_err().contains("10m"));
    }

    #[test]
    fn rotated_files_are_named_after_their_start_and_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("staging.jsonl.zst");
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_641_300);
        let first = path_for(&base, at);
        assert_eq!(
            first.file_name().unwrap(),
            "staging-20261125T211500Z.jsonl.zst"
        );
        std::fs::write(&first, "").unwrap();
        let second = path_for(&base, at);
        assert_eq!(
            second.file_name().unwrap(),
            "staging-20261125T211500Z-2.jsonl.zst"
        );
    }
}
