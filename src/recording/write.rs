//! Writing a recording: the header line, then one line per record, each message body
//! serialised by hand exactly as serde would (the recorder's hot path).

use std::io::{self, Write};

use base64::Engine as _;

use super::format::*;

/// Writes a recording, one line at a time.
pub struct Writer<W: Write> {
    out: W,
    /// Reused for the base64 of binary bodies.
    scratch: Vec<u8>,
}

impl<W: Write> Writer<W> {
    /// Starts a recording by writing its header line.
    pub fn new(mut out: W, header: &Header) -> io::Result<Self> {
        serde_json::to_writer(&mut out, header)?;
        out.write_all(b"\n")?;
        Ok(Writer {
            out,
            scratch: Vec::new(),
        })
    }

    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        match record {
            Record::Message(m) => write_message(&mut self.out, &mut self.scratch, m),
            other => {
                serde_json::to_writer(&mut self.out, other)?;
                self.out.write_all(b"\n")
            }
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The output written to.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }
}

/// Writes a whole recording to a new private file at `path` (parent directories made),
/// zstd-compressed when `compress`, and syncs it (what `split` and `merge` write).
pub fn save<'r>(
    path: &std::path::Path,
    header: &Header,
    records: impl IntoIterator<Item = &'r Record>,
    compress: bool,
) -> io::Result<()> {
    let file = crate::files::create_private(path)?;
    let write_all = |out: &mut dyn Write| -> io::Result<()> {
        let mut writer = Writer::new(out, header)?;
        for record in records {
            writer.write(record)?;
        }
        writer.flush()
    };
    if compress {
        let mut encoder = zstd::Encoder::new(io::BufWriter::new(&file), super::sink::ZSTD_LEVEL)?;
        write_all(&mut encoder)?;
        encoder.finish()?.flush()?;
    } else {
        let mut out = io::BufWriter::new(&file);
        write_all(&mut out)?;
        out.flush()?;
    }
    file.sync_all()
}

/// Writes a message record exactly as serde would, without serde's map machinery for
/// the tagged, flattened record (the recorder's and the replay capture's hottest path:
/// every message goes through here). A binary body's base64 is encoded in one SIMD pass
/// into a reused buffer: no intermediate string and no escape scan (base64 needs none).
fn write_message<W: Write>(out: &mut W, scratch: &mut Vec<u8>, m: &Message) -> io::Result<()> {
    write!(
        out,
        r#"{{"kind":"message","t_us":{},"conn":{},"dir":"{}","op":"{}","#,
        m.t_us,
        m.conn,
        m.dir,
        m.op.name()
    )?;
    match &m.body {
        Body::Text(text) => {
            out.write_all(br#""text":"#)?;
            serde_json::to_writer(&mut *out, text)?;
        }
        Body::Bytes(bytes) => {
            out.write_all(br#""base64":""#)?;
            scratch.resize(bytes.len().div_ceil(3) * 4, 0);
            let n = base64()
                .encode_slice(bytes, scratch)
                .map_err(|e| io::Error::other(e.to_string()))?;
            out.write_all(&scratch[..n])?;
            out.write_all(b"\"")?;
        }
    }
    write!(out, r#","frames":{}"#, m.frames)?;
    if m.compressed {
        out.write_all(br#","compressed":true"#)?;
    }
    if m.rsv != 0 {
        write!(out, r#","rsv":{}"#, m.rsv)?;
    }
    if m.truncated {
        out.write_all(br#","truncated":true"#)?;
    }
    if let Some(size) = m.size {
        write!(out, r#","size":{size}"#)?;
    }
    if let Some(note) = &m.note {
        out.write_all(br#","note":"#)?;
        serde_json::to_writer(&mut *out, note)?;
    }
    out.write_all(b"}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_written_exactly_as_serde_writes_them() {
        let bodies = [
            (Opcode::BINARY, Body::Bytes((0..=255).collect())),
            (
                Opcode::TEXT,
                Body::Text("{\"a\":\"\\u00e9 é \\\" \u{1}\n\"}".into()),
            ),
        ];
        let options = [
            (false, 0, false, None, None),
            (
                true,
                3,
                true,
                Some(99_u64),
                Some("a \"note\"\n".to_string()),
            ),
        ];
        for ((op, body), (compressed, rsv, truncated, size, note)) in bodies
            .into_iter()
            .flat_map(|b| options.clone().into_iter().map(move |o| (b.clone(), o)))
        {
            let mut m = Message::whole(7, Dir::ServerToClient, op, body);
            m.t_us = 123;
            (m.compressed, m.rsv, m.truncated, m.size, m.note) =
                (compressed, rsv, truncated, size, note);
            let record = Record::Message(m);
            let mut fast = Vec::new();
            Writer {
                out: &mut fast,
                scratch: Vec::new(),
            }
            .write(&record)
            .unwrap();
            let mut slow = serde_json::to_vec(&record).unwrap();
            slow.push(b'\n');
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(slow).unwrap()
            );
        }
    }
}
