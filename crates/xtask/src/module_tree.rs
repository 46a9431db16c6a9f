//! Checks that the modules of every crate form a tree: no module imports
//! another that (directly or around a loop) imports it back.
//!
//! A module is a `.rs` file under a crate's `src/` (`bin/` targets aside);
//! it depends on every module it names through a `crate::` or `super::`
//! path (`use` lines and inline paths, `{...}` groups included). A name
//! imported from the crate root through a `pub use module::Name` re-export
//! counts as that module. The crate root itself and `#[cfg(test)] mod
//! tests` blocks are left out: the root declares every module, and tests
//! may reach anywhere. Comment lines (doc links included) are not imports.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Every import cycle, per crate, as `crate: a -> b -> a`.
pub fn cycles(root: &Path) -> std::io::Result<Vec<String>> {
    let mut found = Vec::new();
    let mut src_dirs = vec![root.join("tests/src")];
    for entry in fs::read_dir(root.join("crates"))? {
        src_dirs.push(entry?.path().join("src"));
    }
    src_dirs.sort();
    for src in src_dirs.iter().filter(|d| d.is_dir()) {
        let crate_name = src
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let modules = read_modules(src, src)?;
        let graph = graph(&modules);
        for cycle in find_cycles(&graph) {
            found.push(format!("{crate_name}: {}", cycle.join(" -> ")));
        }
    }
    Ok(found)
}

/// Module path (`a::b`, `""` for the root) to its source text.
fn read_modules(src: &Path, dir: &Path) -> std::io::Result<BTreeMap<String, String>> {
    let mut modules = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let rel = path.strip_prefix(src).unwrap_or(&path);
        if rel.starts_with("bin") {
            continue;
        }
        if path.is_dir() {
            modules.extend(read_modules(src, &path)?);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let mut parts: Vec<String> = rel
                .with_extension("")
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            if parts == ["lib"] || parts == ["main"] {
                parts.clear();
            }
            modules.insert(parts.join("::"), fs::read_to_string(&path)?);
        }
    }
    Ok(modules)
}

fn graph(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let root = modules.get("").map(String::as_str).unwrap_or_default();
    let reexports = reexports(root);
    let mut graph = BTreeMap::new();
    for (name, text) in modules.iter().filter(|(n, _)| !n.is_empty()) {
        let text = text
            .find("#[cfg(test)]\nmod tests")
            .map_or(text.as_str(), |i| &text[..i]);
        // Comments (doc links included) mention modules without importing them.
        let text: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let text = text.as_str();
        let own: Vec<&str> = name.split("::").collect();
        let mut deps = BTreeSet::new();
        for (anchor, base) in [
            ("crate::", Vec::new()),
            ("super::", own[..own.len() - 1].to_vec()),
        ] {
            for path in paths_after(text, anchor) {
                let mut full: Vec<String> = base.iter().map(|s| s.to_string()).collect();
                full.extend(path);
                if let Some(dep) = resolve(&full, modules, &reexports) {
                    // A module may use its own submodules freely.
                    if dep != *name && !dep.starts_with(&format!("{name}::")) {
                        deps.insert(dep);
                    }
                }
            }
        }
        graph.insert(name.clone(), deps);
    }
    graph
}

/// `pub use module::{A, B};` lines of the crate root: item name to module.
fn reexports(root: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in root.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("pub use ") else {
            continue;
        };
        for path in expand(rest.trim_end_matches(';')) {
            if let [module, .., item] = path.as_slice() {
                map.insert(item.clone(), module.clone());
            }
        }
    }
    map
}

/// The paths written after each `anchor` in `text`, groups expanded.
fn paths_after(text: &str, anchor: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(anchor) {
        let before_ok = i == 0
            || !rest[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
        rest = &rest[i + anchor.len()..];
        if !before_ok {
            continue;
        }
        let end = path_end(rest);
        out.extend(expand(&rest[..end]));
    }
    out
}

/// Where the path (with any balanced `{...}` groups) starting `text` ends.
fn path_end(text: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            c if depth == 0 && !(c.is_alphanumeric() || c == '_' || c == ':') => return i,
            _ => {}
        }
    }
    text.len()
}

/// `a::{b, c::d}` to `[[a, b], [a, c, d]]`.
fn expand(path: &str) -> Vec<Vec<String>> {
    let path = path.trim();
    let Some(open) = path.find('{') else {
        let parts: Vec<String> = path
            .split("::")
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        return if parts.is_empty() {
            vec![]
        } else {
            vec![parts]
        };
    };
    let prefix: Vec<String> = path[..open]
        .split("::")
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let inner = &path[open + 1..path.rfind('}').unwrap_or(path.len())];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    let mut out = Vec::new();
    for item in items {
        for tail in expand(item.split(" as ").next().unwrap_or(item)) {
            let mut full = prefix.clone();
            if tail != ["self"] {
                full.extend(tail);
            }
            out.push(full);
        }
    }
    if out.is_empty() {
        out.push(prefix);
    }
    out
}

/// The longest module prefix of `path`; an item of the root goes to the
/// module it is re-exported from (or the root).
fn resolve(
    path: &[String],
    modules: &BTreeMap<String, String>,
    reexports: &BTreeMap<String, String>,
) -> Option<String> {
    for len in (1..=path.len()).rev() {
        let candidate = path[..len].join("::");
        if modules.contains_key(&candidate) {
            return Some(candidate);
        }
    }
    let first = path.first()?;
    reexports
        .get(first)
        .filter(|m| modules.contains_key(*m))
        .cloned()
}

fn find_cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
        found: &mut Vec<Vec<String>>,
    ) {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next) {
                Some(1) => {
                    let start = stack.iter().position(|s| s == next).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next.clone());
                    found.push(cycle);
                }
                Some(_) => {}
                None => visit(next, graph, state, stack, found),
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
    }
    let mut state = BTreeMap::new();
    let mut found = Vec::new();
    for node in graph.keys() {
        if !state.contains_key(node) {
            visit(node, graph, &mut state, &mut Vec::new(), &mut found);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_expand_into_paths() {
        assert_eq!(
            expand("a::{b, c::{d, self}, e as f}"),
            vec![
                vec!["a", "b"],
                vec!["a", "c", "d"],
                vec!["a", "c"],
                vec!["a", "e"]
            ]
        );
    }

    #[test]
    fn a_loop_between_two_modules_is_reported() {
        let modules: BTreeMap<String, String> = [
            ("", "mod a;\nmod b;\npub use b::Thing;"),
            ("a", "use crate::Thing;"),
            ("b", "use crate::a::helper;\npub struct Thing;"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let cycles = find_cycles(&graph(&modules));
        assert_eq!(cycles, vec![vec!["a", "b", "a"]]);
    }

    #[test]
    fn a_doc_link_is_not_an_import() {
        let modules: BTreeMap<String, String> = [
            ("", "mod a;\nmod b;"),
            ("a", "/// See [`crate::b`].\npub fn f() {}"),
            ("b", "use crate::a::f;"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert!(find_cycles(&graph(&modules)).is_empty());
    }
}
