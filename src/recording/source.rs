//! Where a recording's bytes come from: a plain JSON Lines file, or a zstd-compressed
//! one (`.jsonl.zst`, told by its magic number, not its name), decompressed as it is
//! read. A compressed file cut short (a killed recorder) ends at its last complete
//! block, like a torn last line ends a plain file; [`Source::truncated`] says so.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// The four bytes every zstd frame starts with.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The file name a recording is given: `NAME.jsonl`, or `NAME.jsonl.zst` compressed.
pub fn file_name(name: &str, compressed: bool) -> String {
    if compressed {
        format!("{name}.jsonl.zst")
    } else {
        format!("{name}.jsonl")
    }
}

/// Whether `path` is named like a recording (`*.jsonl` or `*.jsonl.zst`).
pub fn is_recording_name(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.ends_with(".jsonl") || name.ends_with(".jsonl.zst")
}

/// A recording's name without its directory and extensions
/// (`recordings/checkout.jsonl.zst` → `checkout`).
pub fn stem_of(path: &Path) -> String {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let name = name.strip_suffix(".zst").unwrap_or(&name);
    let name = name.strip_suffix(".jsonl").unwrap_or(name);
    if name.is_empty() {
        "recording".into()
    } else {
        name.to_string()
    }
}

/// Whether a recording at `path` should be written compressed (its name ends in `.zst`).
pub fn is_compressed_name(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "zst")
}

/// The bytes of one recording file, decompressed if need be.
pub enum Source {
    Plain(BufReader<File>),
    Zstd(BufReader<Tolerant>),
}

impl Source {
    /// Opens `path`, sniffing whether it is compressed.
    pub fn open(path: &Path) -> io::Result<Source> {
        let mut file = BufReader::with_capacity(1 << 16, File::open(path)?);
        if !file.fill_buf()?.starts_with(&ZSTD_MAGIC) {
            return Ok(Source::Plain(file));
        }
        let decoder = zstd::stream::read::Decoder::with_buffer(file)?;
        Ok(Source::Zstd(BufReader::with_capacity(
            1 << 16,
            Tolerant {
                decoder,
                truncated: false,
            },
        )))
    }

    /// Whether a compressed file ended in the middle of a frame (what was decoded
    /// before that point was read).
    pub fn truncated(&self) -> bool {
        matches!(self, Source::Zstd(r) if r.get_ref().truncated)
    }
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Plain(r) => r.read(buf),
            Source::Zstd(r) => r.read(buf),
        }
    }
}

impl BufRead for Source {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self {
            Source::Plain(r) => r.fill_buf(),
            Source::Zstd(r) => r.fill_buf(),
        }
    }

    fn consume(&mut self, amount: usize) {
        match self {
            Source::Plain(r) => r.consume(amount),
            Source::Zstd(r) => r.consume(amount),
        }
    }
}

/// A zstd decoder that takes a stream cut in the middle of a frame as its end.
pub struct Tolerant {
    decoder: zstd::stream::read::Decoder<'static, BufReader<File>>,
    truncated: bool,
}

impl Read for Tolerant {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.truncated {
            return Ok(0);
        }
        match self.decoder.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.truncated = true;
                Ok(0)
            }
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("the zstd stream is corrupt ({e}); what precedes it can be recovered with `zstd -dc`"),
            )),
            ok => ok,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{Body, Dir, Header, Message, Opcode, Record, Recording, Writer};
    use std::io::Write;

    /// A compressed recording flushed after every record, cut at every byte, reads as
    /// a prefix of its records, with a warning once the cut is inside a frame.
    #[test]
    fn a_cut_compressed_recording_reads_up_to_its_last_flushed_block() {
        let dir = tempfile::tempdir().unwrap();
        let whole = dir.path().join("whole.jsonl.zst");
        let mut encoder = zstd::Encoder::new(File::create(&whole).unwrap(), 3).unwrap();
        let mut lengths = Vec::new();
        {
            let mut writer = Writer::new(&mut encoder, &Header::current(0)).unwrap();
            let open = Recording::single_connection("r", []).records.remove(0);
            writer.write(&open).unwrap();
            for i in 0..20 {
                let body = Body::Text(format!(r#"{{"type":"tick","i":{i}}}"#));
                let m = Message::whole(1, Dir::ClientToServer, Opcode::TEXT, body);
                writer.write(&Record::Message(m)).unwrap();
                writer.flush().unwrap();
                lengths.push(std::fs::metadata(&whole).unwrap().len());
            }
        }
        encoder.finish().unwrap().flush().unwrap();
        let bytes = std::fs::read(&whole).unwrap();
        let full = Recording::read(&whole).unwrap();
        assert_eq!(full.records.len(), 21);
        assert!(!full.warnings.iter().any(|w| w.message.contains("frame")));
        let cut = dir.path().join("cut.jsonl.zst");
        for len in lengths[0] as usize..bytes.len() {
            std::fs::write(&cut, &bytes[..len]).unwrap();
            let rec = Recording::read(&cut).unwrap();
            let flushed = lengths.iter().filter(|l| **l as usize <= len).count();
            assert!(rec.records.len() >= flushed, "cut at {len}");
            assert_eq!(rec.records[..], full.records[..rec.records.len()]);
            assert!(rec.warnings.iter().any(|w| w.message.contains("frame")));
        }
    }

    #[test]
    fn names_of_recordings_lose_both_extensions() {
        assert_eq!(stem_of(Path::new("r/checkout.jsonl.zst")), "checkout");
        assert_eq!(stem_of(Path::new("r/checkout.jsonl")), "checkout");
        assert!(is_recording_name(Path::new("a.jsonl.zst")));
        assert!(!is_recording_name(Path::new("a.zst")));
        assert!(is_compressed_name(Path::new(&file_name("a", true))));
    }
}
