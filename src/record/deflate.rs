//! permessage-deflate (RFC 7692) on the recording side.
//!
//! The wire stays compressed; this module reads the negotiated parameters from the
//! upstream's `101` response and inflates a copy of each compressed message so the
//! recording holds what the application sent. One [`Inflater`] per direction keeps the
//! sliding window between messages unless `*_no_context_takeover` was negotiated.
//! Decompression always uses a 32 KiB window, which reads streams compressed with any
//! smaller `*_max_window_bits`.

use flate2::{Decompress, FlushDecompress, Status};

use crate::recording::Dir;

/// Parameters of a negotiated permessage-deflate extension.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Negotiated {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    pub server_max_window_bits: Option<u8>,
    pub client_max_window_bits: Option<u8>,
}

impl Negotiated {
    /// Reads the extension from a `Sec-WebSocket-Extensions` response header value.
    /// Returns `None` when permessage-deflate was not accepted.
    pub fn from_header(value: &str) -> Option<Negotiated> {
        value.split(',').find_map(|ext| {
            let mut parts = ext.split(';').map(str::trim);
            if !parts.next()?.eq_ignore_ascii_case("permessage-deflate") {
                return None;
            }
            let mut n = Negotiated::default();
            for param in parts {
                let (name, value) = param.split_once('=').unwrap_or((param, ""));
                let bits = value.trim().trim_matches('"').parse::<u8>().ok();
                match name.trim().to_ascii_lowercase().as_str() {
                    "server_no_context_takeover" => n.server_no_context_takeover = true,
                    "client_no_context_takeover" => n.client_no_context_takeover = true,
                    "server_max_window_bits" => n.server_max_window_bits = bits,
                    "client_max_window_bits" => n.client_max_window_bits = bits,
                    _ => {}
                }
            }
            Some(n)
        })
    }

    /// Whether the sender in `dir` resets its compression context after each message.
    pub fn no_context_takeover(&self, dir: Dir) -> bool {
        match dir {
            Dir::ClientToServer => self.client_no_context_takeover,
            Dir::ServerToClient => self.server_no_context_takeover,
        }
    }
}

/// Inflates the compressed messages of one direction.
pub struct Inflater {
    inner: Decompress,
    reset_each_message: bool,
    /// Set after a failure: the shared window is lost, later messages cannot be read.
    broken: bool,
}

/// One inflated message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inflated {
    /// The inflated bytes, at most the limit asked for.
    pub body: Vec<u8>,
    /// The full inflated size (more than `body.len()` when the limit cut it).
    pub size: u64,
}

/// Why a compressed message could not be inflated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    #[error("cannot inflate: an earlier message of this direction failed to inflate, so the shared compression window is lost")]
    WindowLost,
    #[error("permessage-deflate: invalid compressed data: {0}")]
    Invalid(String),
}

/// The tail RFC 7692 removes from every compressed message.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

impl Inflater {
    pub fn new(negotiated: &Negotiated, dir: Dir) -> Self {
        Inflater {
            inner: Decompress::new(false),
            reset_each_message: negotiated.no_context_takeover(dir),
            broken: false,
        }
    }

    /// Inflates one message, producing at most `limit` bytes (the rest is counted).
    pub fn inflate(&mut self, compressed: &[u8], limit: usize) -> Result<Inflated, InflateError> {
        if self.broken {
            return Err(InflateError::WindowLost);
        }
        let result = self.run(compressed, limit);
        if result.is_err() {
            self.broken = !self.reset_each_message;
        }
        if self.reset_each_message {
            self.inner.reset(false);
        }
        result
    }

    fn run(&mut self, compressed: &[u8], limit: usize) -> Result<Inflated, InflateError> {
        let mut out = Vec::with_capacity((compressed.len() * 4).clamp(256, limit.max(256)));
        let mut overflow = Vec::new();
        let mut total = 0u64;
        for input in [compressed, &TAIL[..]] {
            let mut pos = 0usize;
            loop {
                // Keep what fits under the limit; count (and drop) the rest.
                let sink = if out.len() < limit {
                    &mut out
                } else {
                    overflow.clear();
                    &mut overflow
                };
                if sink.len() == sink.capacity() {
                    sink.reserve(sink.len().clamp(4096, 1 << 20));
                }
                let (in0, out0) = (self.inner.total_in(), sink.len());
                let room = sink.capacity() - out0;
                let status = self
                    .inner
                    .decompress_vec(&input[pos..], sink, FlushDecompress::Sync)
                    .map_err(|e| InflateError::Invalid(e.to_string()))?;
                let consumed = (self.inner.total_in() - in0) as usize;
                let produced = sink.len() - out0;
                pos += consumed;
                total += produced as u64;
                let output_bound = produced == room;
                let stuck = produced == 0 && consumed == 0;
                if status == Status::StreamEnd || stuck || (!output_bound && pos == input.len()) {
                    break;
                }
            }
        }
        out.truncate(limit);
        Ok(Inflated {
            body: out,
            size: total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    /// Compresses like a permessage-deflate sender: raw deflate, sync flush, tail removed.
    pub fn compress(c: &mut Compress, msg: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(msg.len() + 64);
        c.compress_vec(msg, &mut out, FlushCompress::Sync).unwrap();
        assert!(out.ends_with(&TAIL));
        out.truncate(out.len() - 4);
        out
    }

    #[test]
    fn parses_the_python_websockets_offer() {
        let n = Negotiated::from_header(
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
        )
        .unwrap();
        assert_eq!(n.server_max_window_bits, Some(12));
        assert!(!n.no_context_takeover(Dir::ServerToClient));
        assert_eq!(Negotiated::from_header("x-webkit-deflate-frame"), None);
    }

    #[test]
    fn context_takeover_carries_the_window_across_messages() {
        let mut c = Compress::new(Compression::default(), false);
        let mut inf = Inflater::new(&Negotiated::default(), Dir::ServerToClient);
        for _ in 0..3 {
            let wire = compress(
                &mut c,
                br#"{"type":"progress_update","payload":{"progress":0.5}}"#,
            );
            let Inflated { body: out, size } = inf.inflate(&wire, 1 << 20).unwrap();
            assert_eq!(
                out,
                br#"{"type":"progress_update","payload":{"progress":0.5}}"#
            );
            assert_eq!(size as usize, out.len());
        }
    }

    #[test]
    fn no_context_takeover_resets_and_large_messages_are_capped() {
        let n = Negotiated {
            client_no_context_takeover: true,
            ..Negotiated::default()
        };
        let mut inf = Inflater::new(&n, Dir::ClientToServer);
        let big = vec![b'a'; 1 << 20];
        for _ in 0..2 {
            let mut c = Compress::new(Compression::default(), false);
            let Inflated { body: out, size } = inf.inflate(&compress(&mut c, &big), 1000).unwrap();
            assert_eq!((out.len(), size), (1000, 1 << 20));
        }
    }
}
