//! The shape of the source tree is part of the contract: every module says what it owns,
//! `main.rs` only parses arguments, command modules stay small, and modules depend on
//! each other in one direction (no import cycle).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Every `.rs` file under `src/` with its module path (`structure::diff`; a folder's
/// `mod.rs` is the folder's module, `lib.rs` the crate root "").
fn modules() -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(Path::new(SRC), &mut files);
    files
        .into_iter()
        .filter(|f| !f.ends_with("main.rs"))
        .map(|f| {
            let rel = f.strip_prefix(SRC).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
                parts.pop();
            }
            (parts.join("::"), f)
        })
        .collect()
}

/// The modules a module's code (not its tests, not its comments) refers to, through
/// `crate::…` and `super::…` paths, resolved to the longest module prefix.
fn dependencies(module: &str, file: &Path, all: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let base: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
    let mut deps = BTreeSet::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or_default();
        for (start, prefix) in [("crate::", None), ("super::", Some(()))] {
            let mut rest = line;
            while let Some(at) = rest.find(start) {
                let before = rest[..at].chars().last();
                rest = &rest[at + start.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let path: Vec<&str> = rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .next()
                    .unwrap_or_default()
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .collect();
                let mut full: Vec<&str> = match prefix {
                    None => Vec::new(),
                    // `super::x` names a sibling of this module, file or folder alike.
                    Some(()) => base[..base.len().saturating_sub(1)].to_vec(),
                };
                full.extend(path);
                let target = (0..=full.len())
                    .rev()
                    .map(|n| full[..n].join("::"))
                    .find(|m| all.contains_key(m));
                if let Some(t) = target {
                    let child_or_self = t == module || t.starts_with(&format!("{module}::"));
                    let ancestor = module.starts_with(&format!("{t}::"));
                    if !t.is_empty() && !child_or_self && !ancestor {
                        deps.insert(t);
                    }
                }
            }
        }
    }
    deps
}

#[test]
fn every_module_opens_with_what_it_owns() {
    let missing: Vec<String> = modules()
        .values()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//! "))
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a //! paragraph: {missing:?}"
    );
}

#[test]
fn main_only_parses_arguments_and_commands_stay_small() {
    let main = std::fs::read_to_string(format!("{SRC}/main.rs")).unwrap();
    assert!(
        main.lines().count() <= 40,
        "main.rs has {} lines",
        main.lines().count()
    );
    for (module, file) in modules() {
        if module.starts_with("commands::") {
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            assert!(lines <= 400, "{module} has {lines} lines");
        }
    }
}

#[test]
fn modules_depend_on_each_other_in_one_direction() {
    let all = modules();
    let graph: BTreeMap<String, BTreeSet<String>> = all
        .iter()
        .map(|(m, f)| (m.clone(), dependencies(m, f, &all)))
        .collect();
    // A module that reaches itself again through its dependencies is in a cycle.
    let mut cycles = Vec::new();
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((m, path)) = stack.pop() {
            for dep in &graph[&m] {
                if dep == start {
                    cycles.push(format!("{} -> {start}", path.join(" -> ")));
                } else if seen.insert(dep.clone()) {
                    let mut next = path.clone();
                    next.push(dep.clone());
                    stack.push((dep.clone(), next));
                }
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
    // The direction: the engine never reaches the command line.
    for (m, deps) in &graph {
        if !m.starts_with("commands") {
            assert!(
                !deps.iter().any(|d| d.starts_with("commands")),
                "{m} depends on the command line: {deps:?}"
            );
        }
    }
}
