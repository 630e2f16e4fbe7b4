//! Merging the recordings of several recorders (one per machine, pod or hop) into one
//! timeline (`wsreplay merge`).
//!
//! Each input's times are counted from its own start (`started_unix_ms` in its header,
//! milliseconds since the epoch), so the merged file starts at the earliest start and
//! every record's `t_us` is moved by its file's offset from it; records are then
//! interleaved by time, each input's own order kept (a tie goes to the input given
//! first). The recorders' clocks must agree: records of different inputs less than a
//! millisecond apart (or further, with clock skew) may come out in either order.
//!
//! Connection ids stay distinct: the first input keeps its ids, a later input's id that
//! is already taken gets the next free one (noted in the header's `sources` entry as
//! `renumbered`). Routes are unified by name. A connection a rotated recording
//! continued in its next file (`continued` open, same id, route, client and request as
//! one still open in an earlier input) is joined back into one connection, so the files
//! of one rotated recording merge back into the whole of it.
//!
//! Inputs must agree on what they kept: files recorded with different `--only-path` or
//! `--sample` filters are refused (a merged recording has one filter), as is a file
//! given twice. The merged file
//! ends with a `finish` record when every input did (complete when all were).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use super::format::*;
use super::read::Recording;

/// Why recordings cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge: give two or more recordings")]
    TooFew,
    #[error("{0} is given twice: each recording is merged once")]
    Twice(PathBuf),
    #[error(
        "{first} was recorded with filter {first_filter}, but {other} with filter {other_filter}: a merged recording has one filter. Merge recordings made with the same --only-path and --sample"
    )]
    Filters {
        first: PathBuf,
        first_filter: String,
        other: PathBuf,
        other_filter: String,
    },
}

/// A merged recording: its header and records, ready to write.
#[derive(Debug)]
pub struct Merged {
    pub header: Header,
    pub records: Vec<Record>,
    /// Connections in the merged file.
    pub connections: usize,
}

/// Merges `inputs` (in the order given) into one recording.
pub fn merge(inputs: &[Recording]) -> Result<Merged, MergeError> {
    let [first, rest @ ..] = inputs else {
        return Err(MergeError::TooFew);
    };
    if rest.is_empty() {
        return Err(MergeError::TooFew);
    }
    for (i, input) in inputs.iter().enumerate() {
        if inputs[..i].iter().any(|earlier| earlier.path == input.path) {
            return Err(MergeError::Twice(input.path.clone()));
        }
    }
    for other in rest {
        if other.header.filter != first.header.filter {
            return Err(MergeError::Filters {
                first: first.path.clone(),
                first_filter: describe(&first.header.filter),
                other: other.path.clone(),
                other_filter: describe(&other.header.filter),
            });
        }
    }
    let start = inputs
        .iter()
        .map(|r| r.header.started_unix_ms)
        .min()
        .unwrap_or(0);
    let mut header = Header::current(start);
    header.filter = first.header.filter.clone();
    let mut ids = Ids::default();
    let mut streams = Vec::new();
    for input in inputs {
        let offset_us = (input.header.started_unix_ms - start).saturating_mul(1000);
        let mut note = SourceNote::of(&input.path, &input.header);
        let (records, renumbered) = ids.take(input, offset_us);
        note.renumbered = renumbered;
        header.sources.push(note);
        streams.push(records.into_iter().peekable());
    }
    let mut records = Vec::new();
    while let Some(next) = streams
        .iter_mut()
        .enumerate()
        .filter_map(|(i, s)| Some((s.peek()?.t_us(), i)))
        .min()
    {
        records.extend(streams[next.1].next());
    }
    let finishes: Vec<&Finish> = inputs
        .iter()
        .filter_map(|r| match r.records.last() {
            Some(Record::Finish(f)) => Some(f),
            _ => None,
        })
        .collect();
    if finishes.len() == inputs.len() {
        records.push(Record::Finish(Finish {
            t_us: records.last().map_or(0, Record::t_us),
            complete: finishes.iter().all(|f| f.complete),
            lost: finishes.iter().map(|f| f.lost).sum(),
        }));
    }
    Ok(Merged {
        header,
        records,
        connections: ids.taken.len(),
    })
}

/// `--only-path /ws --sample 0.5`, or `none` for a recording that kept everything.
fn describe(filter: &Filter) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &filter.only_path {
        parts.push(format!("--only-path {p}"));
    }
    if let Some(s) = filter.sample {
        parts.push(format!("--sample {s}"));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(" ")
    }
}

/// The connection ids handed out so far.
#[derive(Default)]
struct Ids {
    taken: BTreeSet<u64>,
    /// Connections opened and not yet ended, by merged id: a `continued` open of the
    /// same connection in a later input joins it.
    open: HashMap<u64, Open>,
}

impl Ids {
    /// The records of `input` (without its `finish`) with merged ids and times, and the
    /// ids it had to give up.
    fn take(&mut self, input: &Recording, offset_us: u64) -> (Vec<Record>, BTreeMap<u64, u64>) {
        let mut map: HashMap<u64, u64> = HashMap::new();
        let mut renumbered = BTreeMap::new();
        let mut out = Vec::with_capacity(input.records.len());
        for record in &input.records {
            let mut record = record.clone();
            record.set_t_us(record.t_us() + offset_us);
            match &mut record {
                Record::Finish(_) => continue,
                Record::Open(o) => {
                    if o.continued && self.continues(o) {
                        map.insert(o.conn, o.conn);
                        continue;
                    }
                    let id = if self.taken.contains(&o.conn) {
                        let free = self.taken.last().map_or(1, |m| m + 1);
                        renumbered.insert(o.conn, free);
                        free
                    } else {
                        o.conn
                    };
                    self.taken.insert(id);
                    map.insert(o.conn, id);
                    o.conn = id;
                    self.open.insert(id, o.clone());
                }
                other => {
                    let id = other.conn().and_then(|c| map.get(&c).copied());
                    if let Some(id) = id {
                        other.set_conn(id);
                        if matches!(other, Record::End(_)) {
                            self.open.remove(&id);
                        }
                    }
                }
            }
            out.push(record);
        }
        (out, renumbered)
    }

    /// Whether `open` continues a connection of an earlier input that is still open.
    fn continues(&self, open: &Open) -> bool {
        self.open.get(&open.conn).is_some_and(|o| {
            o.route == open.route && o.client == open.client && o.request == open.request
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{Body, Dir, Message, Opcode};

    fn rec(path: &str, started: u64, records: Vec<Record>) -> Recording {
        let mut header = Header::current(started);
        header.started_unix_ms = started;
        Recording {
            path: path.into(),
            header,
            records,
            warnings: vec![],
        }
    }

    fn open(conn: u64, route: &str, t_us: u64) -> Record {
        let mut o = Open::accepted(route, conn, "/ws");
        o.t_us = t_us;
        Record::Open(o)
    }

    fn msg(conn: u64, t_us: u64, text: &str) -> Record {
        let mut m = Message::whole(
            conn,
            Dir::ClientToServer,
            Opcode::TEXT,
            Body::Text(text.into()),
        );
        m.t_us = t_us;
        Record::Message(m)
    }

    fn finish(t_us: u64) -> Record {
        Record::Finish(Finish {
            t_us,
            complete: true,
            lost: 0,
        })
    }

    #[test]
    fn inputs_interleave_by_wall_time_and_colliding_ids_are_renumbered() {
        let a = rec(
            "a.jsonl",
            1_000,
            vec![open(1, "frontend", 0), msg(1, 5_000, "a1"), finish(9_000)],
        );
        let b = rec(
            "b.jsonl",
            1_002,
            vec![open(1, "nlp", 0), msg(1, 1_000, "b1"), finish(2_000)],
        );
        let merged = merge(&[a, b]).unwrap();
        let lines: Vec<(u64, Option<u64>)> = merged
            .records
            .iter()
            .map(|r| (r.t_us(), r.conn()))
            .collect();
        assert_eq!(
            lines,
            [
                (0, Some(1)),
                (2_000, Some(2)),
                (3_000, Some(2)),
                (5_000, Some(1)),
                (5_000, None)
            ]
        );
        assert_eq!(merged.header.started_unix_ms, 1_000);
        assert_eq!(
            merged.header.sources[1].renumbered,
            BTreeMap::from([(1, 2)])
        );
        assert_eq!(merged.header.sources[0].file, "a.jsonl");
        assert_eq!(merged.connections, 2);
    }

    #[test]
    fn a_continued_connection_joins_its_opening_and_filters_must_agree() {
        let mut cont = Open::accepted("frontend", 1, "/ws");
        cont.continued = true;
        let a = rec(
            "a.jsonl",
            0,
            vec![open(1, "frontend", 0), msg(1, 10, "one"), finish(20)],
        );
        let b = rec("b.jsonl", 1, vec![Record::Open(cont), msg(1, 10, "two")]);
        let twice = merge(&[a.clone(), a.clone()]).unwrap_err().to_string();
        assert!(twice.contains("a.jsonl is given twice"), "{twice}");
        let merged = merge(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(merged.connections, 1);
        assert_eq!(
            merged.records.len(),
            3,
            "no finish: the second file has none"
        );
        let mut sampled = b;
        sampled.header.filter.sample = Some(0.5);
        let err = merge(&[a, sampled]).unwrap_err().to_string();
        assert!(
            err.contains("b.jsonl") && err.contains("--sample 0.5") && err.contains("none"),
            "{err}"
        );
    }
}
