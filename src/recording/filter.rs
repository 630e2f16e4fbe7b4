//! Which connections a recorder keeps: `--only-path PREFIX` (upgrades whose request
//! path starts with it) and `--sample FRACTION` (that fraction of connections, drawn at
//! random per connection). Connections left out are still forwarded; only their records
//! are dropped, by the writer, before anything reaches disk. The filter is written into
//! the recording's header, so a reader knows the file holds a selection.

use std::collections::HashSet;

pub use super::format::Filter;
use super::format::Record;

/// Whether a connection opened with `request` (`GET /path?query HTTP/1.1`) is kept:
/// its path matches and it is drawn into the sample.
fn keeps(filter: &Filter, request: &str) -> bool {
    let target = request.split(' ').nth(1).unwrap_or("");
    let path_ok = filter
        .only_path
        .as_deref()
        .is_none_or(|prefix| target.starts_with(prefix));
    path_ok && filter.sample.is_none_or(|fraction| draw() < fraction)
}

/// A uniform random number in [0, 1).
fn draw() -> f64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// Applies a [`Filter`] to a stream of records, connection by connection.
#[derive(Debug, Default)]
pub struct Selection {
    filter: Filter,
    dropped: HashSet<u64>,
}

impl Selection {
    pub fn new(filter: Filter) -> Self {
        Selection {
            filter,
            dropped: HashSet::new(),
        }
    }

    /// Whether `record` is written: its connection was kept when it opened (records
    /// that belong to no connection are always kept).
    pub fn keeps(&mut self, record: &Record) -> bool {
        if self.filter.keeps_all() {
            return true;
        }
        match record {
            Record::Open(open) if !keeps(&self.filter, &open.request) => {
                self.dropped.insert(open.conn);
                false
            }
            other => other.conn().is_none_or(|c| !self.dropped.contains(&c)),
        }
    }
}

/// Parses a `--sample` fraction: a number greater than 0 and at most 1.
pub fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if f > 0.0 && f <= 1.0 => Ok(f),
        _ => Err(format!(
            "{text:?} is not a fraction: give a number greater than 0 and at most 1 (0.1 records one connection in ten)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{Dir, Message, Opcode, Recording};

    fn open(conn: u64, path: &str) -> Record {
        let mut rec = Recording::single_connection("r", []);
        let Record::Open(mut o) = rec.records.remove(0) else {
            unreachable!()
        };
        o.conn = conn;
        o.request = format!("GET {path} HTTP/1.1");
        Record::Open(o)
    }

    fn message(conn: u64) -> Record {
        let body = crate::recording::Body::Text("{}".into());
        Record::Message(Message::whole(
            conn,
            Dir::ClientToServer,
            Opcode::TEXT,
            body,
        ))
    }

    #[test]
    fn only_path_keeps_matching_connections_and_all_their_records() {
        let mut s = Selection::new(Filter {
            only_path: Some("/ws".into()),
            sample: None,
        });
        assert!(s.keeps(&open(1, "/ws?user_id=a")));
        assert!(!s.keeps(&open(2, "/health")));
        assert!(s.keeps(&message(1)));
        assert!(!s.keeps(&message(2)));
    }

    #[test]
    fn a_sample_keeps_about_its_fraction_and_whole_connections() {
        let mut s = Selection::new(Filter {
            only_path: None,
            sample: Some(0.5),
        });
        let kept: Vec<u64> = (0..2000).filter(|c| s.keeps(&open(*c, "/"))).collect();
        // 2000 fair draws: outside 800..1200 has a probability below 1e-18.
        assert!((800..1200).contains(&kept.len()), "{}", kept.len());
        for c in 0..2000 {
            assert_eq!(s.keeps(&message(c)), kept.contains(&c));
        }
        assert!(parse_fraction("0").is_err() && parse_fraction("1.5").is_err());
        assert_eq!(parse_fraction("0.25"), Ok(0.25));
    }
}
