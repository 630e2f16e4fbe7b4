//! Explaining how a route's conversation patterns changed (the `### sequences` lines).
//!
//! Each pattern gone from the snapshot is paired with the most alike new pattern (the
//! same first step, then the fewest step edits), and the two are diffed step by step:
//! a kind that moved (`agent_completed now before tool_completed`), a kind inserted,
//! dropped or duplicated, a run that became shorter or longer, a stream that became
//! empty. Each explanation carries how many conversations show it (the new pattern's
//! `×N`, summed over the pairs that read alike). Patterns that pair with nothing are
//! left to the caller's fallback ("N conversation pattern(s) gone, N new").

use std::collections::{BTreeMap, BTreeSet};

/// One step of a pattern: `s2c progress_update ×1+` is kind `s2c progress_update`
/// with [`Run::Stream`].
#[derive(Clone, Debug, PartialEq, Eq)]
struct Step {
    kind: String,
    run: Run,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    Exact(u64),
    Stream,
}

/// What the pairing explained, and how many patterns on each side it left unexplained.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Explained {
    /// "`agent_completed` now before `tool_completed` (3 conversations)".
    pub lines: Vec<String>,
    pub unpaired_gone: usize,
    pub unpaired_new: usize,
}

/// Pairs the patterns only `old` has with those only `new` has and explains each pair.
pub fn explain(old: &BTreeMap<String, u64>, new: &BTreeMap<String, u64>) -> Explained {
    let gone: Vec<(Vec<Step>, &str)> = old
        .keys()
        .filter(|p| !new.contains_key(*p))
        .map(|p| (steps(p), p.as_str()))
        .collect();
    let mut added: Vec<(Vec<Step>, &str, u64)> = new
        .iter()
        .filter(|(p, _)| !old.contains_key(*p))
        .map(|(p, n)| (steps(p), p.as_str(), *n))
        .collect();
    // Explanation → conversations showing it, in order of first appearance.
    let mut found: Vec<(String, u64)> = Vec::new();
    let mut unpaired_gone = 0;
    for (before, text) in &gone {
        let best = added
            .iter()
            .enumerate()
            .filter(|(_, (after, t, _))| prefix_of(t) == prefix_of(text) && alike(before, after))
            .min_by_key(|(_, (after, _, _))| {
                let same_first = before.first().map(|s| &s.kind) == after.first().map(|s| &s.kind);
                (!same_first, edit_distance(before, after))
            })
            .map(|(i, _)| i);
        let Some(i) = best else {
            unpaired_gone += 1;
            continue;
        };
        let changes = changes(before, &added[i].0);
        if changes.is_empty() {
            // Alike in every step (a change in the `(and … anywhere)` tail): unexplained.
            unpaired_gone += 1;
            continue;
        }
        let (_, _, n) = added.remove(i);
        let text = changes.join(", ");
        match found.iter_mut().find(|(t, _)| *t == text) {
            Some((_, total)) => *total += n,
            None => found.push((text, n)),
        }
    }
    Explained {
        lines: found
            .into_iter()
            .map(|(text, n)| {
                let s = if n == 1 { "" } else { "s" };
                format!("{text} ({n} conversation{s})")
            })
            .collect(),
        unpaired_gone,
        unpaired_new: added.len(),
    }
}

/// `per connection: ` or nothing: such patterns pair only with their own sort.
fn prefix_of(pattern: &str) -> bool {
    pattern.starts_with("per connection: ")
}

/// Reads a pattern line's steps (without `per connection:` and the `(and … anywhere)` tail).
fn steps(pattern: &str) -> Vec<Step> {
    let body = pattern.strip_prefix("per connection: ").unwrap_or(pattern);
    let body = body.split(" (and ").next().unwrap_or(body);
    body.split(" → ")
        .filter(|s| !s.is_empty())
        .map(|s| match s.rsplit_once(" ×") {
            Some((kind, "1+")) => Step {
                kind: kind.into(),
                run: Run::Stream,
            },
            Some((kind, n)) if n.parse::<u64>().is_ok() => Step {
                kind: kind.into(),
                run: Run::Exact(n.parse().unwrap_or(1)),
            },
            _ => Step {
                kind: s.into(),
                run: Run::Exact(1),
            },
        })
        .collect()
}

/// Alike enough to explain one by the other: the same first step, or at most half the
/// steps edited.
fn alike(a: &[Step], b: &[Step]) -> bool {
    a.first().map(|s| &s.kind) == b.first().map(|s| &s.kind)
        || edit_distance(a, b) * 2 <= a.len().max(b.len())
}

/// Levenshtein distance over the steps' kinds.
fn edit_distance(a: &[Step], b: &[Step]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if x.kind == y.kind {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// The kind as people name it: its label, without the direction.
fn name(kind: &str) -> String {
    let label = kind.split_once(' ').map_or(kind, |(_, l)| l);
    format!("`{label}`")
}

/// What turned `before` into `after`, in words.
fn changes(before: &[Step], after: &[Step]) -> Vec<String> {
    if sorted_kinds(before) == sorted_kinds(after) {
        let mut out = moves(before, after);
        out.extend(run_changes(before.iter().zip(after)));
        return out;
    }
    // Align the kinds (longest common subsequence) and name what is left over.
    let table = lcs(before, after);
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    let mut aligned = Vec::new();
    let had: BTreeSet<&str> = before.iter().map(|s| s.kind.as_str()).collect();
    let has: BTreeSet<&str> = after.iter().map(|s| s.kind.as_str()).collect();
    while i < before.len() || j < after.len() {
        if i < before.len() && j < after.len() && before[i].kind == after[j].kind {
            aligned.push((&before[i], &after[j]));
            i += 1;
            j += 1;
        } else if j < after.len() && (i == before.len() || table[i][j + 1] >= table[i + 1][j]) {
            let s = &after[j];
            out.push(if had.contains(s.kind.as_str()) {
                format!("{} duplicated", name(&s.kind))
            } else {
                match j.checked_sub(1).map(|p| &after[p]) {
                    Some(p) => format!("{} inserted after {}", name(&s.kind), name(&p.kind)),
                    None => format!("{} inserted first", name(&s.kind)),
                }
            });
            j += 1;
        } else {
            let s = &before[i];
            out.push(match (s.run, has.contains(s.kind.as_str())) {
                (Run::Stream, false) => format!("stream {} now empty", name(&s.kind)),
                (_, true) => format!("one run of {} dropped", name(&s.kind)),
                (_, false) => format!("{} dropped", name(&s.kind)),
            });
            i += 1;
        }
    }
    out.extend(run_changes(aligned.into_iter()));
    out
}

fn sorted_kinds(steps: &[Step]) -> Vec<&str> {
    let mut k: Vec<&str> = steps.iter().map(|s| s.kind.as_str()).collect();
    k.sort();
    k
}

/// `table[i][j]`: the longest common subsequence of `a[i..]` and `b[j..]`, by kind.
fn lcs(a: &[Step], b: &[Step]) -> Vec<Vec<usize>> {
    let mut t = vec![vec![0; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            t[i][j] = if a[i].kind == b[j].kind {
                t[i + 1][j + 1] + 1
            } else {
                t[i + 1][j].max(t[i][j + 1])
            };
        }
    }
    t
}

/// Same kinds in another order: the fewer moves of either reading, each step that now
/// comes earlier named against the step it now precedes, or each that now comes later
/// against the step it now follows.
fn moves(before: &[Step], after: &[Step]) -> Vec<String> {
    let earlier = moves_forward(before.iter(), after.iter(), "before");
    let later = moves_forward(before.iter().rev(), after.iter().rev(), "after");
    if later.len() < earlier.len() {
        later
    } else {
        earlier
    }
}

/// Walks `after`, moving the step it needs next in `before` forward to meet it.
fn moves_forward<'a>(
    before: impl Iterator<Item = &'a Step>,
    after: impl Iterator<Item = &'a Step>,
    word: &str,
) -> Vec<String> {
    let mut order: Vec<&Step> = before.collect();
    let mut out = Vec::new();
    for (i, step) in after.enumerate() {
        if order[i].kind == step.kind {
            continue;
        }
        let Some(j) = (i + 1..order.len()).find(|&j| order[j].kind == step.kind) else {
            break;
        };
        out.push(format!(
            "{} now {word} {}",
            name(&step.kind),
            name(&order[i].kind)
        ));
        let moved = order.remove(j);
        order.insert(i, moved);
    }
    out
}

/// Runs of the same kind whose length changed.
fn run_changes<'a>(pairs: impl Iterator<Item = (&'a Step, &'a Step)>) -> Vec<String> {
    pairs
        .filter(|(a, b)| a.kind == b.kind && a.run != b.run)
        .map(|(a, b)| match (a.run, b.run) {
            (Run::Exact(x), Run::Exact(y)) if y > x => {
                format!("{} duplicated (×{x} → ×{y})", name(&a.kind))
            }
            (Run::Exact(x), Run::Exact(y)) => format!("{} shorter (×{x} → ×{y})", name(&a.kind)),
            (Run::Stream, Run::Exact(y)) => format!("stream {} now ×{y}", name(&a.kind)),
            (Run::Exact(x), Run::Stream) => format!("{} ×{x} now a stream", name(&a.kind)),
            (Run::Stream, Run::Stream) => unreachable!("filtered: runs differ"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(old: &str, new: &str) -> Explained {
        explain(
            &BTreeMap::from([(old.to_string(), 3)]),
            &BTreeMap::from([(new.to_string(), 3)]),
        )
    }

    /// Each case: the snapshot's pattern, the run's, and the explanation expected.
    fn explains(cases: &[(&str, &str, &str)]) {
        for (old, new, expected) in cases {
            let e = one(old, new);
            assert_eq!((e.unpaired_gone, e.unpaired_new), (0, 0), "{e:?}");
            assert_eq!(e.lines.join(" | "), format!("{expected} (3 conversations)"));
        }
    }

    const TOOL: &str = "c2s chat → s2c agent_started → s2c tool_executing → s2c tool_completed → s2c agent_completed";

    #[test]
    fn a_kind_that_moved() {
        explains(&[
            (
                TOOL,
                "c2s chat → s2c agent_started → s2c tool_executing → s2c agent_completed → s2c tool_completed",
                "`agent_completed` now before `tool_completed`",
            ),
            (
                TOOL,
                "c2s chat → s2c tool_executing → s2c agent_started → s2c tool_completed → s2c agent_completed",
                "`tool_executing` now before `agent_started`",
            ),
            // Moved to the end: one move read backwards, not three read forwards.
            (
                TOOL,
                "c2s chat → s2c tool_executing → s2c tool_completed → s2c agent_completed → s2c agent_started",
                "`agent_started` now after `agent_completed`",
            ),
        ]);
    }

    #[test]
    fn inserted_dropped_duplicated() {
        explains(&[
            (
                TOOL,
                "c2s chat → s2c agent_started → s2c agent_thinking → s2c tool_executing → s2c tool_completed → s2c agent_completed",
                "`agent_thinking` inserted after `agent_started`",
            ),
            (
                TOOL,
                "c2s chat → s2c agent_started → s2c tool_executing → s2c agent_completed",
                "`tool_completed` dropped",
            ),
            (
                TOOL,
                "c2s chat → s2c agent_started → s2c tool_executing → s2c tool_completed ×2 → s2c agent_completed",
                "`tool_completed` duplicated (×1 → ×2)",
            ),
            (
                TOOL,
                "c2s chat → s2c agent_started → s2c tool_executing → s2c tool_completed → s2c agent_completed → s2c agent_started",
                "`agent_started` duplicated",
            ),
        ]);
    }

    #[test]
    fn streams_that_became_empty_or_runs_shorter() {
        explains(&[
            (
                "c2s q → s2c row ×1+ → s2c done",
                "c2s q → s2c done",
                "stream `row` now empty",
            ),
            (
                "c2s q → s2c row ×3 → s2c done",
                "c2s q → s2c row ×2 → s2c done",
                "`row` shorter (×3 → ×2)",
            ),
        ]);
    }

    #[test]
    fn unrelated_patterns_fall_back() {
        let e = one("c2s a → s2c b → s2c c → s2c d", "c2s x → s2c y → s2c z");
        assert_eq!((e.lines.len(), e.unpaired_gone, e.unpaired_new), (0, 1, 1));
    }

    #[test]
    fn a_change_only_in_the_anywhere_tail_is_left_to_the_fallback() {
        let e = one(
            "c2s q → s2c done (and s2c token ×0+ anywhere)",
            "c2s q → s2c done",
        );
        assert_eq!((e.lines.len(), e.unpaired_gone, e.unpaired_new), (0, 1, 1));
    }

    #[test]
    fn alike_explanations_add_their_conversations() {
        let old = BTreeMap::from([
            ("c2s a → s2c b → s2c c".to_string(), 2),
            ("c2s a → s2c x → s2c b → s2c c".to_string(), 1),
        ]);
        let new = BTreeMap::from([
            ("c2s a → s2c c → s2c b".to_string(), 2),
            ("c2s a → s2c x → s2c c → s2c b".to_string(), 1),
        ]);
        let e = explain(&old, &new);
        assert_eq!(e.lines, ["`c` now before `b` (3 conversations)"]);
    }
}
