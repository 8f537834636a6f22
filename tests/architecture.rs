//! The layers, checked: which top-level module of `src/` names which other
//! (`crate::NAME` anywhere outside comments), so that pure decisions stay
//! pure and no two modules need each other. `cargo test --test architecture
//! -- --nocapture` prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules it names.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = Graph::new();
    let mut files = Vec::new();
    walk(&src, &mut files);
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_string_lossy().trim_end_matches(".rs").to_owned();
        if module == "main" || module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let uses = graph.entry(module.clone()).or_default();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    uses.insert(name);
                }
            }
        }
    }
    graph
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn domain_names_no_store_http_smtp_or_configuration() {
    let graph = graph();
    for line in graph.iter().map(|(m, uses)| format!("{m} -> {uses:?}")) {
        println!("{line}");
    }
    // The pure helpers every layer may use (`language`: matching a locale,
    // and tend's own words, compiled in).
    let allowed: BTreeSet<&str> = ["language", "problem", "suggest", "toml_source"].into();
    let outside: Vec<&String> = graph["domain"]
        .iter()
        .filter(|m| !allowed.contains(m.as_str()))
        .collect();
    assert!(
        outside.is_empty(),
        "domain/ must stay pure, but names {outside:?}"
    );
    assert!(
        graph["language"].is_empty(),
        "language is a leaf every layer may use, but names {:?}",
        graph["language"]
    );
}

#[test]
fn no_two_top_level_modules_need_each_other() {
    let graph = graph();
    // A loop exists when a module reaches itself through the others.
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(&String, Vec<&String>)> = vec![(start, vec![start])];
        while let Some((at, path)) = stack.pop() {
            for next in graph.get(at).into_iter().flatten() {
                if next == start {
                    let names: Vec<&str> = path.iter().map(|s| s.as_str()).collect();
                    panic!("import loop: {} -> {start}", names.join(" -> "));
                }
                if seen.insert(next) {
                    let mut longer = path.clone();
                    longer.push(next);
                    stack.push((next, longer));
                }
            }
        }
    }
}

/// Nor does `domain/` reach for I/O through an outside crate or the
/// standard library: no database, network, mail, files, processes or
/// clock of its own (the time is always passed in).
#[test]
fn domain_does_no_io() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let forbidden = [
        "sqlx::",
        "tokio::",
        "lettre::",
        "axum::",
        "reqwest::",
        "std::fs",
        "std::net",
        "std::process",
        "std::env",
        "Utc::now",
        "Local::now",
        "SystemTime::now",
        "Instant::now",
    ];
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        // Tests may build what they check however they like.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or("");
            for name in forbidden.iter().filter(|name| line.contains(*name)) {
                found.push(format!("{}:{}: {name}", file.display(), n + 1));
            }
        }
    }
    assert!(files.len() > 20, "read {} files", files.len());
    assert!(
        found.is_empty(),
        "domain/ must do no I/O:\n{}",
        found.join("\n")
    );
}
