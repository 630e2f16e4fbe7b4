//! Learning the noise of a clean build: what varies between a recording and replays of
//! it against the build it came from, written into the snapshot as reviewable
//! `(learned: …)` lines, and the tolerant reading of a run against those lines.
//!
//! [`learn()`] renders the recording and each replay with the same hints and merges them:
//! a field whose presence varied becomes optional (`payload.hint?  string  (learned:
//! present in 2 of 4 runs)`), one whose descriptions varied (types, string formats,
//! literal values) the union of what was seen (`id  integer | string: uuid  (learned:
//! 2 formats in 4 runs)`), or any string when more values were seen than an enum holds
//! (`(learned: any value, 15 seen in 4 runs)`); a kind whose count varied is taken as a
//! stream (`### s2c progress ×1+  (learned: 1–4 per conversation)`), `×0+` when a
//! conversation of a run had none (a stream of the recording too); a conversation
//! whose order varied keeps its recorded pattern and lists the orders seen (`×2 A → B →
//! C  (learned: also A → C → B)`). The lines are the tolerance: what the reviewer reads
//! is what is enforced, and deleting a note (or the line) makes that part strict again.
//!
//! [`relax`] reads a run's structure against a stored snapshot: where the run stays
//! within a learned line (a subset of its descriptions, its field present or not when
//! its presence was learned, one of its orders), the run's line becomes the stored one,
//! so the comparison sees no difference; anything else (a rename, a value never seen,
//! a dropped or duplicated once-per-conversation event) is left for the diff to name.
//! [`learned_streams`] gives the kinds a snapshot learned as streams, so that the run is
//! rendered with them ([`StructureConfig::learned_streams`]).

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::recording::Recording;

/// What [`learn()`] made of a recording and its replays.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Learned {
    /// The snapshot, with a `(learned: …)` note on every tolerance.
    pub structure: Structure,
    /// What varied but could not be learned (a new kind, a conversation that is no
    /// reordering of a recorded one): a check of such a run will still differ.
    pub unlearned: Vec<String>,
}

/// The note that marks a learned line, before its text: `  (learned: …)`.
const NOTE: &str = "  (learned";

/// The note of a field whose values varied too much to list: any value passes.
const ANY: &str = "any value";

/// Splits a learned note off a description, sequence or heading: (`text`, `learned: …`).
pub fn split_note(text: &str) -> (&str, Option<&str>) {
    match text.rfind(NOTE) {
        Some(i) if text.ends_with(')') => (&text[..i], Some(&text[i + 3..text.len() - 1])),
        _ => (text, None),
    }
}

fn with_note(text: &str, notes: &[String]) -> String {
    if notes.is_empty() {
        text.to_string()
    } else {
        format!("{text}{NOTE}: {})", notes.join("; "))
    }
}

/// Strips the optional marker.
fn bare(path: &str) -> &str {
    path.strip_suffix('?').unwrap_or(path)
}

/// The alternatives of a description: `integer | string: uuid` → both.
fn parts(desc: &str) -> impl Iterator<Item = &str> {
    desc.split(" | ")
}

/// Learns what varies between `recording` and its replays `runs` on the replayed
/// `routes` (the others are taken from the recording as they are).
pub fn learn(
    recording: &Recording,
    runs: &[Recording],
    routes: &[String],
    config: &StructureConfig,
) -> Learned {
    let base = Observation::of_with(recording, config);
    let observed: Vec<Observation> = runs
        .iter()
        .map(|r| Observation::of_with(r, config))
        .collect();
    let all: Vec<&Observation> = std::iter::once(&base).chain(&observed).collect();
    // Kinds whose count varied between the runs, and streams some conversation of a
    // run lacked: streams, with the fewest and most a conversation had.
    let plain = base.hints_with(config);
    let recorded = base.render(&plain);
    let plain_runs: Vec<Structure> = observed.iter().map(|o| o.render(&plain)).collect();
    let mut config = config.clone();
    let mut ranges = BTreeMap::new();
    for route in routes {
        let Some(old) = recorded.routes.get(route) else {
            continue;
        };
        for ((dir, label), kind) in &old.kinds {
            let key = (*dir, label.clone());
            let varied = plain_runs.iter().any(|run| {
                let seen = run.routes.get(route).and_then(|r| r.kinds.get(&key));
                seen.is_some_and(|seen| seen.count_text() != kind.count_text())
            });
            let counts = all
                .iter()
                .filter_map(|o| o.per_conversation(route, *dir, label));
            let (lo, hi) = counts.fold((u64::MAX, 0), |(lo, hi), (a, b)| (lo.min(a), hi.max(b)));
            let emptied = kind.stream && kind.count > 0 && lo == 0;
            if config.exact.iter().any(|e| e == label) || !((varied && !kind.stream) || emptied) {
                continue;
            }
            let key = (route.clone(), *dir, label.clone());
            config.learned_streams.insert(key.clone(), lo.min(1));
            ranges.insert(key, (lo, hi));
        }
    }
    let hints = base.hints_with(&config);
    let mut out = Learned {
        structure: base.render(&hints),
        unlearned: Vec::new(),
    };
    let rendered: Vec<Structure> = observed.iter().map(|o| o.render(&hints)).collect();
    for route in routes {
        let Some(section) = out.structure.routes.get_mut(route) else {
            continue;
        };
        let others: Vec<&RouteSection> = rendered
            .iter()
            .filter_map(|s| s.routes.get(route))
            .collect();
        for ((dir, label), kind) in section.kinds.iter_mut() {
            if let Some((lo, hi)) = ranges.get(&(route.clone(), *dir, label.clone())) {
                kind.learned = Some(format!("learned: {lo}–{hi} per conversation"));
            }
            let variants: Vec<&KindSection> = std::iter::once(&*kind)
                .chain(
                    others
                        .iter()
                        .filter_map(|r| r.kinds.get(&(*dir, label.clone()))),
                )
                .collect();
            let fields = learn_fields(&variants);
            kind.fields = fields;
        }
        for other in &others {
            for ((dir, label), kind) in &other.kinds {
                if !section.kinds.contains_key(&(*dir, label.clone())) {
                    out.unlearned.push(format!(
                        "route {route}: {dir} {label} ×{} was sent in a replay but not in the recording",
                        kind.count_text()
                    ));
                }
            }
        }
        let mut alternatives: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for other in &others {
            let (paired, unpaired) = pair(&section.sequences, &other.sequences);
            for (alternative, canonical) in paired {
                alternatives
                    .entry(canonical)
                    .or_default()
                    .insert(alternative);
            }
            for seq in unpaired {
                let line = format!(
                    "route {route}: conversation `{seq}` is no reordering of a recorded one"
                );
                if !out.unlearned.contains(&line) {
                    out.unlearned.push(line);
                }
            }
        }
        for (canonical, seen) in alternatives {
            if let Some(n) = section.sequences.remove(&canonical) {
                let also = seen.into_iter().collect::<Vec<_>>().join(" | ");
                let key = with_note(&canonical, &[format!("also {also}")]);
                section.sequences.insert(key, n);
            }
        }
    }
    out
}

/// One kind's fields, learned from its sections in the recording and the runs.
fn learn_fields(variants: &[&KindSection]) -> BTreeMap<String, String> {
    #[derive(Default)]
    struct Seen<'a> {
        present: usize,
        optional: usize,
        descs: BTreeSet<&'a str>,
    }
    let mut paths: BTreeMap<&str, Seen> = BTreeMap::new();
    for v in variants {
        for (path, desc) in &v.fields {
            let seen = paths.entry(bare(path)).or_default();
            seen.present += 1;
            seen.optional += usize::from(path.ends_with('?'));
            seen.descs.insert(desc);
        }
    }
    let runs = variants.len();
    let mut out = BTreeMap::new();
    for (path, seen) in paths {
        let presence = seen.present < runs || (seen.optional > 0 && seen.optional < seen.present);
        let mut notes = Vec::new();
        if presence {
            notes.push(format!("present in {} of {runs} runs", seen.present));
        }
        let mut union: BTreeSet<&str> = seen.descs.iter().flat_map(|d| parts(d)).collect();
        let values = union.iter().filter(|p| p.starts_with('"')).count();
        if values > MAX_LITERALS {
            // Too many to list: any string, as the field is no enum after all.
            union.retain(|p| !p.starts_with('"'));
            union.insert("string");
            notes.push(format!("{ANY}, {values} seen in {runs} runs"));
        } else if seen.descs.len() > 1 {
            let what = if values == union.len() {
                "values"
            } else {
                "formats"
            };
            notes.push(format!("{} {what} in {runs} runs", union.len()));
        }
        let desc = union.into_iter().collect::<Vec<_>>().join(" | ");
        let name = if presence || seen.optional > 0 {
            format!("{path}?")
        } else {
            path.to_string()
        };
        out.insert(name, with_note(&desc, &notes));
    }
    out
}

/// A conversation line as a comparable bag of steps: the steps that are no streams
/// (`×N` spelled out), sorted, and the streams (once each when `loose`, as the runs of
/// a stream merge when what stood between them moves).
fn steps_key(seq: &str, loose: bool) -> (Vec<String>, Vec<String>) {
    let (mut steps, mut streams) = (Vec::new(), Vec::new());
    let (seq, anywhere) = match seq.split_once(" (and ") {
        Some((s, rest)) => (s, Some(rest)),
        None => (seq, None),
    };
    streams.extend(anywhere.map(str::to_string));
    let (prefix, seq) = match seq.strip_prefix("per connection: ") {
        Some(rest) => ("per connection", rest),
        None => ("", seq),
    };
    steps.push(prefix.to_string());
    for step in seq.split(" → ") {
        if step.ends_with(" ×1+") {
            streams.push(step.to_string());
            continue;
        }
        match step
            .rsplit_once(" ×")
            .and_then(|(s, n)| Some((s, n.parse::<usize>().ok()?)))
        {
            Some((s, n)) => steps.extend(std::iter::repeat_n(s.to_string(), n)),
            None => steps.push(step.to_string()),
        }
    }
    steps.sort();
    streams.sort();
    if loose {
        streams.dedup();
    }
    (steps, streams)
}

/// Pairs the conversations of `run` that the recording does not have with recorded ones
/// they reorder (ones the run has fewer of than the recording): (run's, recorded), and
/// the ones no recorded conversation reorders.
fn pair(
    recorded: &BTreeMap<String, u64>,
    run: &BTreeMap<String, u64>,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut short: BTreeMap<&str, i64> = recorded
        .iter()
        .map(|(s, n)| {
            (
                s.as_str(),
                *n as i64 - run.get(s).copied().unwrap_or(0) as i64,
            )
        })
        .collect();
    let mut unmatched: Vec<(&str, u64)> = run
        .iter()
        .filter(|(s, _)| !recorded.contains_key(*s))
        .map(|(s, n)| (s.as_str(), *n))
        .collect();
    let mut paired = Vec::new();
    for loose in [false, true] {
        unmatched.retain(|(seq, n)| {
            let key = steps_key(seq, loose);
            let found = short
                .iter_mut()
                .find(|(c, left)| **left > 0 && steps_key(c, loose) == key);
            match found {
                Some((canonical, left)) => {
                    *left -= *n as i64;
                    paired.push((seq.to_string(), canonical.to_string()));
                    false
                }
                None => true,
            }
        });
    }
    let unpaired = unmatched.into_iter().map(|(s, _)| s.to_string()).collect();
    (paired, unpaired)
}

/// The kinds `stored` learned as streams: (route, direction, label) → the fewest a
/// conversation may have (0 or 1, its heading's `×0+` or `×1+`).
pub fn learned_streams(stored: &Structure) -> BTreeMap<(String, Dir, String), u64> {
    let mut out = BTreeMap::new();
    for (route, section) in &stored.routes {
        for ((dir, label), kind) in &section.kinds {
            if kind.stream && kind.learned.is_some() {
                out.insert((route.clone(), *dir, label.clone()), kind.count);
            }
        }
    }
    out
}

/// Reads `run` against the learned lines of `stored`: each part of the run within a
/// learned tolerance takes the stored line, so only what goes beyond it differs.
pub fn relax(run: &mut Structure, stored: &Structure) {
    for (route, old) in &stored.routes {
        let Some(new) = run.routes.get_mut(route) else {
            continue;
        };
        for (key, old_kind) in &old.kinds {
            let Some(new_kind) = new.kinds.get_mut(key) else {
                continue;
            };
            if old_kind.learned.is_some() && old_kind.count_text() == new_kind.count_text() {
                new_kind.learned = old_kind.learned.clone();
            }
            relax_fields(&mut new_kind.fields, &old_kind.fields);
        }
        relax_sequences(&mut new.sequences, &old.sequences);
    }
}

fn relax_fields(fields: &mut BTreeMap<String, String>, stored: &BTreeMap<String, String>) {
    for (path, desc) in stored {
        let (allowed, Some(note)) = split_note(desc) else {
            continue;
        };
        let allowed: BTreeSet<&str> = parts(allowed).collect();
        let presence = note.contains(" present in ");
        let any = note.contains(ANY);
        let within_parts =
            |d: &str| parts(d).all(|x| allowed.contains(x) || (any && x.starts_with('"')));
        let seen = fields
            .iter()
            .find(|(p, _)| bare(p) == bare(path))
            .map(|(p, d)| (p.clone(), d.clone()));
        let within = match &seen {
            Some((p, d)) => (p == path || presence) && within_parts(d),
            None => presence,
        };
        if within {
            if let Some((p, _)) = seen {
                fields.remove(&p);
            }
            fields.insert(path.clone(), desc.clone());
        }
    }
}

fn relax_sequences(sequences: &mut BTreeMap<String, u64>, stored: &BTreeMap<String, u64>) {
    // A run's conversation line (recorded or an order seen while learning) → the line
    // that stands for it in the snapshot.
    let mut stands_for: BTreeMap<&str, &str> = BTreeMap::new();
    for key in stored.keys() {
        let (seq, note) = split_note(key);
        stands_for.insert(seq, key);
        if let Some(also) = note.and_then(|n| n.strip_prefix("learned: also ")) {
            for alternative in also.split(" | ") {
                stands_for.insert(alternative, key);
            }
        }
    }
    let mut out = BTreeMap::new();
    for (seq, n) in std::mem::take(sequences) {
        let key = stands_for.get(seq.as_str()).map_or(seq, |k| k.to_string());
        *out.entry(key).or_default() += n;
    }
    *sequences = out;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::Body;

    /// A recording of chats, each a list of (kind, extra JSON fields) after its `chat`.
    fn chats(chats: &[&[(&str, &str)]]) -> Recording {
        let mut messages = Vec::new();
        for (i, events) in chats.iter().enumerate() {
            let id = format!("msg_{:08x}", 0xabc000 + i);
            let msg = |kind: &str, extra: &str| {
                Body::Text(format!(r#"{{"type":"{kind}","message_id":"{id}"{extra}}}"#))
            };
            messages.push((Dir::ClientToServer, msg("chat", "")));
            for (kind, extra) in *events {
                messages.push((Dir::ServerToClient, msg(kind, extra)));
            }
        }
        Recording::single_connection("r", messages)
    }

    const OK: &str = r#","status":"ok","n":1"#;

    /// A chat with two `a`.
    const TWO_A: &[(&str, &str)] = &[
        ("started", ""),
        ("a", ""),
        ("a", ""),
        ("b", ""),
        ("done", OK),
    ];

    fn clean() -> Recording {
        chats(&[
            &[("started", ""), ("a", ""), ("b", ""), ("done", OK)],
            &[("started", ""), ("a", ""), ("b", ""), ("done", OK)],
        ])
    }

    /// The clean build's runs: a hint sometimes, `n` a string once, `degraded` once,
    /// `b` before `a` once, two `a` once.
    fn noisy() -> Vec<Recording> {
        let hint = r#","status":"ok","n":1,"hint":"try again later""#;
        let text = r#","status":"degraded","n":"one""#;
        vec![
            chats(&[
                &[("started", ""), ("a", ""), ("b", ""), ("done", hint)],
                &[("started", ""), ("a", ""), ("b", ""), ("done", OK)],
            ]),
            chats(&[
                &[("started", ""), ("b", ""), ("a", ""), ("done", text)],
                &[("started", ""), ("a", ""), ("b", ""), ("done", OK)],
            ]),
            chats(&[
                &[("started", ""), ("a", ""), ("b", ""), ("done", OK)],
                TWO_A,
            ]),
        ]
    }

    fn learned() -> Learned {
        learn(
            &clean(),
            &noisy(),
            &["r".to_string()],
            &StructureConfig::default(),
        )
    }

    /// The run as `check` reads it against the learned snapshot.
    fn checked(learned: &Structure, run: &Recording) -> String {
        let config = StructureConfig {
            learned_streams: learned_streams(learned),
            ..StructureConfig::default()
        };
        let obs = Observation::of_with(&clean(), &config);
        let mut new = Observation::of_with(run, &config).render(&obs.hints_with(&config));
        relax(&mut new, learned);
        new.render()
    }

    #[test]
    fn the_learned_lines_read_as_the_reviewer_sees_them() {
        let learned = learned();
        assert!(learned.unlearned.is_empty(), "{:?}", learned.unlearned);
        insta::assert_snapshot!(learned.structure.render(), @r#"
        ## route r

        ### c2s chat ×2
        message_id  string: id msg_<hex>
        type        "chat"

        ### s2c a ×1+  (learned: 1–2 per conversation)
        message_id  string: id msg_<hex>
        type        "a"

        ### s2c b ×2
        message_id  string: id msg_<hex>
        type        "b"

        ### s2c done ×2
        hint?       string  (learned: present in 1 of 4 runs)
        message_id  string: id msg_<hex>
        n           integer | string  (learned: 2 formats in 4 runs)
        status      "degraded" | "ok"  (learned: 2 values in 4 runs)
        type        "done"

        ### s2c started ×2
        message_id  string: id msg_<hex>
        type        "started"

        ### sequences
        ×2 c2s chat → s2c started → s2c a ×1+ → s2c b → s2c done  (learned: also c2s chat → s2c started → s2c b → s2c a ×1+ → s2c done)
        "#);
        let text = learned.structure.render();
        assert_eq!(Structure::parse(&text).unwrap(), learned.structure);
    }

    #[test]
    fn every_learned_variation_passes_and_nothing_more() {
        let learned = learned();
        let snapshot = learned.structure.render();
        for run in noisy() {
            assert_eq!(checked(&learned.structure, &run), snapshot);
        }
        // Three `a` in a chat: the stream learned 1–2, its number is not compared.
        let more = chats(&[
            &[
                ("started", ""),
                ("a", ""),
                ("a", ""),
                ("a", ""),
                ("b", ""),
                ("done", OK),
            ],
            &[("started", ""), ("b", ""), ("a", ""), ("done", OK)],
        ]);
        assert_eq!(checked(&learned.structure, &more), snapshot);
        let changed = |events: &[(&str, &str)]| {
            let run = chats(&[
                events,
                &[("started", ""), ("a", ""), ("b", ""), ("done", OK)],
            ]);
            let new = checked(&learned.structure, &run);
            assert_ne!(new, snapshot, "{events:?}");
            new
        };
        let renamed = r#","status":"ok","count":1"#;
        let unseen = r#","status":"failed","n":1"#;
        let float = r#","status":"ok","n":1.5"#;
        let new = changed(&[("started", ""), ("a", ""), ("b", ""), ("done", renamed)]);
        assert!(new.contains("count?      integer\n"), "{new}");
        assert!(new.contains("n?          integer\n"), "{new}");
        let new = changed(&[("started", ""), ("a", ""), ("b", ""), ("done", unseen)]);
        assert!(new.contains("status      \"failed\" | \"ok\"\n"), "{new}");
        let new = changed(&[("started", ""), ("a", ""), ("b", ""), ("done", float)]);
        assert!(new.contains("n           float | integer\n"), "{new}");
        let new = changed(&[
            ("started", ""),
            ("a", ""),
            ("b", ""),
            ("done", OK),
            ("done", OK),
        ]);
        assert!(new.contains("### s2c done ×3\n"), "{new}");
        let new = changed(&[("a", ""), ("b", ""), ("done", OK)]);
        assert!(new.contains("### s2c started ×1\n"), "{new}");
        // An order never seen: `done` before `b`.
        let new = changed(&[("started", ""), ("a", ""), ("done", OK), ("b", "")]);
        assert!(new.contains("→ s2c done → s2c b\n"), "{new}");
    }

    #[test]
    fn a_deleted_line_or_note_makes_it_strict_again() {
        let text = learned().structure.render();
        let strict = text
            .replace(
                "hint?       string  (learned: present in 1 of 4 runs)\n",
                "",
            )
            .replace(
                "integer | string  (learned: 2 formats in 4 runs)",
                "integer",
            );
        let strict = Structure::parse(&strict).unwrap();
        assert_eq!(checked(&strict, &clean()), strict.render());
        let [hint, text, _] = noisy().try_into().unwrap();
        let new = checked(&strict, &hint);
        assert!(new.contains("\nhint?       string\n"), "{new}");
        let new = checked(&strict, &text);
        assert!(new.contains("\nn           integer | string\n"), "{new}");
    }

    /// A stream (1 and 2 `a` in the recording) that a run's chat lacked: `×0+`.
    #[test]
    fn a_stream_a_run_left_empty_is_learned_as_zero_or_more() {
        let recorded = chats(&[
            &[("started", ""), ("a", ""), ("b", ""), ("done", OK)],
            TWO_A,
        ]);
        let empty = chats(&[
            &[("started", ""), ("b", ""), ("done", OK)],
            &[("started", ""), ("a", ""), ("b", ""), ("done", OK)],
        ]);
        let learned = learn(
            &recorded,
            std::slice::from_ref(&empty),
            &["r".into()],
            &StructureConfig::default(),
        );
        assert!(learned.unlearned.is_empty(), "{:?}", learned.unlearned);
        let text = learned.structure.render();
        assert!(
            text.contains("### s2c a ×0+  (learned: 0–2 per conversation)\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "×2 c2s chat → s2c started → s2c b → s2c done (and s2c a ×0+ anywhere)\n"
            ),
            "{text}"
        );
        let config = StructureConfig {
            learned_streams: learned_streams(&learned.structure),
            ..StructureConfig::default()
        };
        let hints = Observation::of_with(&recorded, &config).hints_with(&config);
        let read = |run: &Recording| {
            let mut new = Observation::of_with(run, &config).render(&hints);
            relax(&mut new, &learned.structure);
            new.render()
        };
        assert_eq!(read(&empty), text);
        assert_eq!(read(&recorded), text);
        let no_b = chats(&[
            &[("started", ""), ("a", ""), ("done", OK)],
            &[("started", ""), ("a", ""), ("b", ""), ("done", OK)],
        ]);
        assert_ne!(read(&no_b), text);
    }

    /// More values than an enum holds: any value passes, a number still does not.
    #[test]
    fn a_field_whose_values_vary_too_much_takes_any_value() {
        let status = |s: &str| format!(r#","status":"{s}","n":1"#);
        let run = |a: &str, b: &str| {
            let (a, b) = (status(a), status(b));
            chats(&[
                &[("started", ""), ("a", ""), ("b", ""), ("done", &a)],
                &[("started", ""), ("a", ""), ("b", ""), ("done", &b)],
            ])
        };
        let runs: Vec<Recording> = (0..7)
            .map(|i| run(&format!("state{i}a"), &format!("state{i}b")))
            .collect();
        let learned = learn(&clean(), &runs, &["r".into()], &StructureConfig::default());
        let text = learned.structure.render();
        assert!(
            text.contains("status      string  (learned: any value, 15 seen in 8 runs)\n"),
            "{text}"
        );
        assert_eq!(checked(&learned.structure, &run("fresh", "ok")), text);
        let number = chats(&[
            &[
                ("started", ""),
                ("a", ""),
                ("b", ""),
                ("done", r#","status":3,"n":1"#),
            ],
            &[("started", ""), ("a", ""), ("b", ""), ("done", OK)],
        ]);
        assert_ne!(checked(&learned.structure, &number), text);
    }

    #[test]
    fn a_conversation_that_reorders_none_is_not_learned() {
        // The first chat's `done` lost its `message_id`: a conversation of its own.
        let mut other = clean();
        let done = other.records.iter_mut().find_map(|r| match r {
            crate::recording::Record::Message(m)
                if matches!(&m.body, Body::Text(t) if t.contains(r#""type":"done""#)) =>
            {
                Some(m)
            }
            _ => None,
        });
        done.unwrap().body = Body::Text(format!(r#"{{"type":"done"{OK}}}"#));
        let learned = learn(
            &clean(),
            &[other],
            &["r".into()],
            &StructureConfig::default(),
        );
        assert_eq!(
            learned.unlearned,
            [
                "route r: conversation `c2s chat → s2c started → s2c a → s2c b` is no reordering of a recorded one",
                "route r: conversation `per connection: s2c done` is no reordering of a recorded one",
            ]
        );
    }
}
