//! Splitting a long capture into small recordings for CI (`wsreplay split`): one file
//! per connection, per user or per session of the frontend route.
//!
//! The frontend route is the one whose connections nothing else caused: the route of
//! the recording's first connection (its first `open` that is not `continued`), unless
//! one is named (`--frontend`). Every other route is an agent hop.
//!
//! - `connection`: one file per frontend connection, holding that connection only (no
//!   agent hops): for replaying against a build whose agents are real.
//! - `session`: one file per frontend connection together with the agent-hop records
//!   that belong to it ([`sessions`]): replayable on its own with the agents mocked.
//! - `user`: one file per user, all of that user's sessions. The user is the value of
//!   the frontend upgrade's `user_id`, `user` or `uid` query parameter (the first one
//!   present); a connection without one belongs to the user named after its client's
//!   address (`client-10.0.0.7`).
//!
//! Each file keeps the records as they were (times, connection ids, order), ends with
//! the source's `finish` record when it had one, and has its own header naming the
//! source and the part (`sources`, `split`).

pub mod sessions;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::recording::{Header, Open, Record, Recording, SourceNote, SplitNote};
use crate::replay::correlate::IdPair;

/// What a recording is split by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum By {
    /// One frontend connection and nothing else (replay it against real agents).
    Connection,
    /// Every session of one user: the upgrade's user_id, user or uid query parameter,
    /// else the client's address.
    User,
    /// One frontend connection with the agent-hop messages that belong to it (replay
    /// it with the agents mocked).
    Session,
}

impl By {
    pub fn as_str(self) -> &'static str {
        match self {
            By::Connection => "connection",
            By::User => "user",
            By::Session => "session",
        }
    }
}

/// Why a recording cannot be split.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("{0}: has no connections to split")]
    Empty(PathBuf),
    #[error(
        "{path}: has no route {route:?}; its routes are {routes}. Name one of them with --frontend"
    )]
    NoRoute {
        path: PathBuf,
        route: String,
        routes: String,
    },
}

/// One output file: its name (without directory or extension), what it holds, and the
/// positions of its records in the source.
#[derive(Debug)]
pub struct Part {
    pub name: String,
    pub note: String,
    pub records: BTreeSet<usize>,
}

/// How a recording splits.
#[derive(Debug)]
pub struct Split {
    pub frontend: String,
    pub parts: Vec<Part>,
    /// Agent-hop exchanges that belong to no session (`session` and `user` only).
    pub unattributed: usize,
}

/// The frontend route of `recording`: `named`, else the route of its first connection.
pub fn frontend_route(recording: &Recording, named: Option<&str>) -> Result<String, SplitError> {
    let routes = recording.routes();
    if let Some(route) = named {
        if routes.contains(&route) {
            return Ok(route.to_string());
        }
        return Err(SplitError::NoRoute {
            path: recording.path.clone(),
            route: route.to_string(),
            routes: routes.join(", "),
        });
    }
    let first = recording.opens().find(|o| !o.continued);
    first
        .or_else(|| recording.opens().next())
        .map(|o| o.route.clone())
        .ok_or_else(|| SplitError::Empty(recording.path.clone()))
}

/// Plans the split of `recording` by `by`; `pairs` are the `[[correlate]]` declarations.
pub fn plan(
    recording: &Recording,
    by: By,
    frontend: Option<&str>,
    pairs: &[IdPair],
) -> Result<Split, SplitError> {
    let frontend = frontend_route(recording, frontend)?;
    let stem = crate::recording::stem_of(&recording.path);
    let fronts: Vec<&Open> = recording.opens().filter(|o| o.route == frontend).collect();
    let mut own: BTreeMap<u64, BTreeSet<usize>> = BTreeMap::new();
    for (position, record) in recording.records.iter().enumerate() {
        if let Some(conn) = record.conn() {
            own.entry(conn).or_default().insert(position);
        }
    }
    let attribution = match by {
        By::Connection => sessions::Attribution::default(),
        By::User | By::Session => sessions::attribute(recording, &frontend, pairs),
    };
    let mut session = |open: &Open| {
        let mut records = own.remove(&open.conn).unwrap_or_default();
        if let Some(hops) = attribution.hops.get(&open.conn) {
            records.extend(hops.iter().copied());
        }
        records
    };
    let width = fronts.len().to_string().len().max(3);
    let mut parts = Vec::new();
    if by == By::User {
        let mut users: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
        for open in &fronts {
            let records = session(open);
            users.entry(user_of(open)).or_default().extend(records);
        }
        let mut names = BTreeSet::new();
        for (user, records) in users {
            let base = format!("{stem}-user-{}", file_safe(&user));
            let name = (1..)
                .map(|n| match n {
                    1 => base.clone(),
                    n => format!("{base}-{n}"),
                })
                .find(|name| names.insert(name.clone()))
                .expect("some numbered name is free");
            parts.push(Part {
                name,
                note: format!("user {user}"),
                records,
            });
        }
    } else {
        for (i, open) in fronts.iter().enumerate() {
            let n = i + 1;
            let mut name = format!("{stem}-{}-{n:0width$}", by.as_str());
            let mut note = format!("{} {n} (connection {})", by.as_str(), open.conn);
            if let Some(user) = query_user(open) {
                name.push_str(&format!("-user-{}", file_safe(&user)));
                note.push_str(&format!(" of user {user}"));
            }
            parts.push(Part {
                name,
                note,
                records: session(open),
            });
        }
    }
    if let Some(Record::Finish(_)) = recording.records.last() {
        let last = recording.records.len() - 1;
        parts.iter_mut().for_each(|p| {
            p.records.insert(last);
        });
    }
    Ok(Split {
        frontend,
        parts,
        unattributed: attribution.unattributed,
    })
}

/// Writes the parts of `split` into `dir`, compressed when `compress`; returns the
/// files written, in the order of the parts.
pub fn write(
    recording: &Recording,
    split: &Split,
    by: By,
    dir: &Path,
    compress: bool,
) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for part in &split.parts {
        let path = dir.join(crate::recording::source::file_name(&part.name, compress));
        let header = Header {
            sources: vec![SourceNote::of(&recording.path, &recording.header)],
            split: Some(SplitNote {
                by: by.as_str().into(),
                part: part.note.clone(),
                frontend: split.frontend.clone(),
            }),
            filter: recording.header.filter.clone(),
            ..Header::current(recording.header.started_unix_ms)
        };
        let records = part.records.iter().map(|p| &recording.records[*p]);
        crate::recording::save(&path, &header, records, compress)?;
        written.push(path);
    }
    Ok(written)
}

/// The user of a frontend connection: its `user_id`, `user` or `uid` query parameter,
/// else `client-ADDRESS`.
pub fn user_of(open: &Open) -> String {
    query_user(open).unwrap_or_else(|| {
        let client = &open.client;
        let host = client.rsplit_once(':').map_or(client.as_str(), |(h, _)| h);
        format!("client-{}", host.trim_matches(['[', ']']))
    })
}

fn query_user(open: &Open) -> Option<String> {
    let params: Vec<(String, String)> = open.query_pairs().collect();
    ["user_id", "user", "uid"].iter().find_map(|key| {
        params
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.clone())
    })
}

/// A value made safe for a file name: letters, digits, `.`, `_` and `-` kept, anything
/// else `_`, at most 40 characters.
fn file_safe(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_come_from_the_query_or_else_the_client_address() {
        let mut open = Open::accepted("frontend", 1, "/ws?token=x&uid=bob%20b");
        assert_eq!(user_of(&open), "bob b");
        open.request = "GET /ws?user=&user_id=alice HTTP/1.1".into();
        assert_eq!(user_of(&open), "alice");
        open.request = "GET /ws HTTP/1.1".into();
        open.client = "[::1]:5000".into();
        assert_eq!(user_of(&open), "client-::1");
        assert_eq!(file_safe("a/../b c"), "a_.._b_c");
    }
}
