//! The service's modules form a one-way stack (see src/lib.rs): read every `use` line
//! and every `crate::` path of src/, and check that no module reaches a module that
//! reaches it back, and that each layer uses only the layers below it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`http::api`, `store`, `lib` for the crate root) → its source.
fn modules(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if path.is_dir() {
            let mut p = prefix.to_vec();
            p.push(name);
            modules(&path, &p, out);
            continue;
        }
        let Some(stem) = name.strip_suffix(".rs") else {
            continue;
        };
        let module = match (prefix.is_empty(), stem) {
            (true, "lib") => "lib".to_string(),
            (true, "main") => "main".to_string(),
            (false, "mod") => prefix.join("::"),
            _ => {
                let mut p = prefix.to_vec();
                p.push(stem.to_string());
                p.join("::")
            }
        };
        out.insert(module, std::fs::read_to_string(&path).unwrap());
    }
}

/// The code without comments and without the unit tests at the end.
fn code(src: &str) -> String {
    let src = match src.find("#[cfg(test)]\nmod tests") {
        Some(i) => &src[..i],
        None => src,
    };
    src.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e` (renames dropped).
fn expand(tree: &str) -> Vec<String> {
    fn split_top(t: &str) -> Vec<String> {
        let (mut parts, mut cur, mut depth) = (Vec::new(), String::new(), 0);
        for ch in t.chars() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if ch == ',' && depth == 0 {
                parts.push(std::mem::take(&mut cur));
            } else {
                cur.push(ch);
            }
        }
        parts.push(cur);
        parts.into_iter().filter(|p| !p.is_empty()).collect()
    }
    fn rec(prefix: &str, t: &str, out: &mut Vec<String>) {
        for part in split_top(t) {
            match part.find('{') {
                Some(i) if part.ends_with('}') => {
                    let head = part[..i].trim_end_matches("::");
                    let p = if head.is_empty() {
                        prefix.to_string()
                    } else if prefix.is_empty() {
                        head.to_string()
                    } else {
                        format!("{prefix}::{head}")
                    };
                    rec(&p, &part[i + 1..part.len() - 1], out);
                }
                _ if prefix.is_empty() => out.push(part),
                _ => out.push(format!("{prefix}::{part}")),
            }
        }
    }
    // Drop `as NAME`, keeping what follows the name (`,` or `}`).
    let mut text = String::new();
    let mut words = tree.split_whitespace();
    while let Some(w) = words.next() {
        if w == "as" {
            let next = words.next().unwrap_or("");
            text.push_str(next.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_'));
        } else {
            text.push_str(w);
        }
    }
    let mut out = Vec::new();
    rec("", &text, &mut out);
    out
}

/// The module a path in module `me` names: the longest module prefix of the path.
fn resolve(me: &str, path: &str, mods: &BTreeSet<String>) -> Option<String> {
    let segs: Vec<&str> = path.split("::").collect();
    let me_segs: Vec<&str> = if me == "lib" || me == "main" {
        Vec::new()
    } else {
        me.split("::").collect()
    };
    let full: Vec<&str> = match segs[0] {
        "crate" | "jitsudod" => segs[1..].to_vec(),
        "self" => [me_segs.clone(), segs[1..].to_vec()].concat(),
        "super" => {
            let ups = segs.iter().take_while(|s| **s == "super").count();
            let base = &me_segs[..me_segs.len().saturating_sub(ups)];
            [base.to_vec(), segs[ups..].to_vec()].concat()
        }
        first => {
            let child = [me_segs.clone(), vec![first]].concat().join("::");
            if !mods.contains(&child) {
                return None;
            }
            [me_segs.clone(), segs].concat()
        }
    };
    (1..=full.len())
        .rev()
        .map(|i| full[..i].join("::"))
        .find(|m| mods.contains(m))
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut sources = BTreeMap::new();
    modules(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &[],
        &mut sources,
    );
    let mods: BTreeSet<String> = sources.keys().cloned().collect();
    let mut edges = BTreeMap::new();
    for (me, src) in &sources {
        let code = code(src);
        let mut paths = Vec::new();
        // `use` items, possibly over several lines.
        let mut rest = code.as_str();
        while let Some(i) = rest.find("use ") {
            let before = rest[..i].chars().last();
            let after = &rest[i + 4..];
            rest = after;
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(end) = after.find(';') {
                paths.extend(expand(&after[..end]));
            }
        }
        // Paths written out in the code.
        for (i, _) in code.match_indices("crate::") {
            let p: String = code[i..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            paths.push(p.trim_end_matches(':').to_string());
        }
        let deps: BTreeSet<String> = paths
            .iter()
            .filter_map(|p| resolve(me, p, &mods))
            .filter(|d| d != me)
            .collect();
        edges.insert(me.clone(), deps);
    }
    edges
}

/// Modules on a cycle: a module from which, following uses, one comes back to it.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let reaches = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&str> = edges[from].iter().map(String::as_str).collect();
        while let Some(m) = todo.pop() {
            if seen.insert(m.to_string()) {
                todo.extend(edges.get(m).into_iter().flatten().map(String::as_str));
            }
        }
        seen
    };
    edges
        .keys()
        .filter(|m| reaches(m).contains(*m))
        .map(|m| format!("{m} -> {:?}", edges[m]))
        .collect()
}

/// The layer of a module: the first path segment, except main.
fn layer(m: &str) -> &str {
    m.split("::").next().unwrap()
}

#[test]
fn the_parser_sees_what_it_must() {
    assert_eq!(
        expand("crate::a::{b, c::{d as e, f}}, x"),
        ["crate::a::b", "crate::a::c::d", "crate::a::c::f", "x"]
    );
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.insert("a".into(), ["b".to_string()].into());
    edges.insert("b".into(), ["a".to_string()].into());
    edges.insert("c".into(), ["a".to_string()].into());
    assert_eq!(cycles(&edges).len(), 2, "a and b are on a cycle, c is not");
    let g = graph();
    assert!(
        g["http::api"].contains("service"),
        "the handlers' use of the service is seen: {g:#?}"
    );
    assert!(g["store"].contains("store::tx"), "{g:#?}");
}

#[test]
fn no_module_uses_a_module_that_uses_it() {
    let g = graph();
    let c = cycles(&g);
    assert!(c.is_empty(), "import cycles:\n{}", c.join("\n"));
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    // Top to bottom; a layer may use any layer after it.
    const STACK: &[&str] = &[
        "main", "lib", "cli", "serve", "http", "service", "oidc", "config", "webhook", "store",
        "model", "limits",
    ];
    let g = graph();
    let mut wrong = Vec::new();
    for (m, deps) in &g {
        let Some(at) = STACK.iter().position(|l| *l == layer(m)) else {
            wrong.push(format!("{m} is in no layer"));
            continue;
        };
        for d in deps {
            let below = STACK.iter().position(|l| *l == layer(d));
            if layer(d) != layer(m) && !matches!(below, Some(b) if b > at) {
                wrong.push(format!("{m} uses {d}"));
            }
        }
    }
    // The handlers reach storage only through the service.
    for (m, deps) in &g {
        if layer(m) == "http" && deps.iter().any(|d| layer(d) == "store") {
            wrong.push(format!("{m} uses storage directly"));
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}
