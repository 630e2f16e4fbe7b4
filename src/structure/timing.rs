//! Timing envelopes (`check --timing`): is the build as quick as when it was recorded?
//!
//! For every route and message kind the build sends (server messages on `--target`
//! routes, requests on `--mock` routes), two figures are taken from the recording and
//! from the replay: the **time to first message** of that kind after its connection
//! opened (the slowest connection counts), and the **longest gap** before a message of
//! that kind (since the previous message on its connection, either way). A replayed
//! figure above `recorded × tolerance + slack` is a [`Breach`]. Faster is never one.
//! Breaches are reported apart from structure differences, with their own exit code.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::protocol::Reader;
use crate::recording::{Dir, Record, Recording};

/// How much slower than recorded the build may be.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimingConfig {
    /// Allowed factor over the recorded figure (`--timing-tolerance`).
    pub tolerance: f64,
    /// Allowed on top, for scheduling noise on small figures (`--timing-slack-ms`).
    pub slack: Duration,
}

impl Default for TimingConfig {
    fn default() -> Self {
        TimingConfig {
            tolerance: 2.0,
            slack: Duration::from_millis(50),
        }
    }
}

impl TimingConfig {
    fn allowed_us(&self, recorded_us: u64) -> u64 {
        (recorded_us as f64 * self.tolerance) as u64 + self.slack.as_micros() as u64
    }
}

/// The two figures of one message kind, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    pub first_us: u64,
    pub gap_us: u64,
}

/// Route, direction and label of a message kind.
pub type KindKey = (String, Dir, String);

/// Which figure breached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    FirstMessage,
    Gap,
}

impl Measure {
    fn name(self) -> &'static str {
        match self {
            Measure::FirstMessage => "time to first message",
            Measure::Gap => "longest gap before it",
        }
    }
}

/// A figure of the replay outside the envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breach {
    pub route: String,
    pub dir: Dir,
    pub label: String,
    pub measure: Measure,
    pub recorded_us: u64,
    pub replayed_us: u64,
    pub allowed_us: u64,
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |us: u64| us as f64 / 1000.0;
        write!(
            f,
            "{} {} {}: {} {:.1} ms, recorded {:.1} ms (allowed up to {:.1} ms",
            self.route,
            self.dir,
            self.label,
            self.measure.name(),
            ms(self.replayed_us),
            ms(self.recorded_us),
            ms(self.allowed_us),
        )?;
        if self.recorded_us >= 1000 {
            let ratio = self.replayed_us as f64 / self.recorded_us as f64;
            write!(f, ", {ratio:.1}× slower")?;
        }
        f.write_str(")")
    }
}

/// The figures of every message kind sent in `dir` on each `(route, dir)` stream.
pub fn figures(recording: &Recording, streams: &[(String, Dir)]) -> BTreeMap<KindKey, Figures> {
    // Per connection: route, open time, time of its latest message.
    let mut conns: BTreeMap<u64, (&str, u64, u64)> = BTreeMap::new();
    let mut firsts: BTreeMap<(u64, KindKey), u64> = BTreeMap::new();
    let mut out: BTreeMap<KindKey, Figures> = BTreeMap::new();
    let mut reader = Reader::default();
    for record in &recording.records {
        match record {
            Record::Open(o) => {
                reader.open(o);
                conns.insert(o.conn, (o.route.as_str(), o.t_us, o.t_us));
            }
            Record::Message(m) => {
                let Some((route, opened, last)) = conns.get_mut(&m.conn) else {
                    continue;
                };
                let gap = m.t_us.saturating_sub(*last);
                *last = m.t_us;
                // Every message is read (a decoder may remember earlier ones).
                let label = reader.label(m);
                if !streams.iter().any(|(r, d)| r == route && *d == m.dir) {
                    continue;
                }
                let key = (route.to_string(), m.dir, label);
                let since_open = m.t_us.saturating_sub(*opened);
                firsts.entry((m.conn, key.clone())).or_insert(since_open);
                let f = out.entry(key).or_default();
                f.gap_us = f.gap_us.max(gap);
            }
            _ => {}
        }
    }
    for ((_, key), first) in firsts {
        let f = out.entry(key).or_default();
        f.first_us = f.first_us.max(first);
    }
    out
}

/// The replay's figures against the recording's, kind by kind (kinds the replay never
/// sent are the structure comparison's business, not timing's).
pub fn compare(
    recorded: &Recording,
    replayed: &Recording,
    streams: &[(String, Dir)],
    config: &TimingConfig,
) -> Vec<Breach> {
    let before = figures(recorded, streams);
    let mut breaches = Vec::new();
    for ((route, dir, label), now) in figures(replayed, streams) {
        let Some(then) = before.get(&(route.clone(), dir, label.clone())) else {
            continue;
        };
        for (measure, recorded_us, replayed_us) in [
            (Measure::FirstMessage, then.first_us, now.first_us),
            (Measure::Gap, then.gap_us, now.gap_us),
        ] {
            let allowed_us = config.allowed_us(recorded_us);
            if replayed_us > allowed_us {
                breaches.push(Breach {
                    route: route.clone(),
                    dir,
                    label: label.clone(),
                    measure,
                    recorded_us,
                    replayed_us,
                    allowed_us,
                });
            }
        }
    }
    breaches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{Body, Header, Message, Opcode, Open};

    /// One connection: chat at 0, then server messages at the given offsets (ms).
    fn session(server_ms: &[u64]) -> Recording {
        let mut records = vec![Record::Open(Open {
            continued: false,
            t_us: 0,
            route: "frontend".into(),
            conn: 1,
            client: String::new(),
            upstream: String::new(),
            request: "GET / HTTP/1.1".into(),
            headers: Vec::new(),
            status: 101,
            response_headers: Vec::new(),
        })];
        let msg = |t_ms: u64, dir, ty: &str| {
            let mut m = Message::whole(
                1,
                dir,
                Opcode::TEXT,
                Body::Text(format!(r#"{{"type":"{ty}"}}"#)),
            );
            m.t_us = t_ms * 1000;
            Record::Message(m)
        };
        records.push(msg(0, Dir::ClientToServer, "chat"));
        for (i, t) in server_ms.iter().enumerate() {
            let ty = if i == 0 { "started" } else { "progress" };
            records.push(msg(*t, Dir::ServerToClient, ty));
        }
        Recording {
            path: "t.jsonl".into(),
            header: Header::current(0),
            records,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn a_ten_times_slower_build_breaches_and_a_faster_one_does_not() {
        let streams = [("frontend".to_string(), Dir::ServerToClient)];
        let recorded = session(&[10, 40, 60]);
        let f = figures(&recorded, &streams);
        let key = |l: &str| ("frontend".to_string(), Dir::ServerToClient, l.to_string());
        assert_eq!(
            f[&key("started")],
            Figures {
                first_us: 10_000,
                gap_us: 10_000
            }
        );
        assert_eq!(
            f[&key("progress")],
            Figures {
                first_us: 40_000,
                gap_us: 30_000
            }
        );

        let config = TimingConfig::default();
        assert!(compare(&recorded, &session(&[2, 5, 9]), &streams, &config).is_empty());
        assert!(compare(&recorded, &recorded, &streams, &config).is_empty());
        let slow = compare(&recorded, &session(&[100, 400, 600]), &streams, &config);
        let text: Vec<String> = slow.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "frontend s2c progress: time to first message 400.0 ms, recorded 40.0 ms (allowed up to 130.0 ms, 10.0× slower)",
                "frontend s2c progress: longest gap before it 300.0 ms, recorded 30.0 ms (allowed up to 110.0 ms, 10.0× slower)",
                "frontend s2c started: time to first message 100.0 ms, recorded 10.0 ms (allowed up to 70.0 ms, 10.0× slower)",
                "frontend s2c started: longest gap before it 100.0 ms, recorded 10.0 ms (allowed up to 70.0 ms, 10.0× slower)",
            ]
        );
    }
}
