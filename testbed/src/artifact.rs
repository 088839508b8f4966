//! The one place the system suites find the programs they test.
//!
//! `cargo test -p X` builds only package X's own binaries, so every suite also runs
//! binaries of other packages (jitsudoctl, jitsudo-net, pam_jitsudo.so, ...) that only
//! `cargo build --workspace` made. A test that silently ran one of those from before
//! the last edit would test old code, so [`artifact`] refuses it instead.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Names a prebuilt setuid `jitsudo` to test instead of the workspace's own build
/// (test.sh runs the end-to-end and attack suites a second time against the shipped
/// static musl build this way).
pub const JITSUDO_TEST_BIN: &str = "JITSUDO_TEST_BIN";

/// Every artifact the suites run: (file name in target/<profile>/, package directory
/// relative to the workspace root). The package directory is where its sources are.
const ARTIFACTS: &[(&str, &str)] = &[
    ("jitsudo", "."),
    ("jitsudo-nss", "."),
    ("jitsudoctl", "ctl"),
    ("jitsudo-net", "net"),
    ("jitsudo-auth", "auth"),
    ("jitsudod", "server"),
    ("libpam_jitsudo.so", "pam"),
];

/// The built `name` (a file name in `target/<profile>/` such as `jitsudoctl` or
/// `libpam_jitsudo.so`; `pam_jitsudo.so` is accepted for the module), checked.
///
/// The one staleness rule: the artifact must exist and be no older than every
/// workspace source it was built from. Those are the files cargo's dep-info beside it
/// (`target/<profile>/<name>.d`) lists, which is exact: a change under core/src makes
/// jitsudoctl, jitsudo and the PAM module stale alike, and a change to the setuid
/// binary's own modules does not make `jitsudo-nss`, a second binary of the same
/// package that shares none of them, stale forever (cargo never relinks it for that).
/// Without a dep-info file, every Rust source (`src/**/*.rs`, `build.rs`) of its
/// package and of the workspace packages it depends on (the `path` dependencies of
/// their Cargo.toml) counts instead. A stale artifact fails the test, naming the
/// artifact and the newer source, and asking for `cargo build --workspace`.
/// Rebuilding from inside a running test is not attempted: cargo holds the build
/// directory's lock.
///
/// One override: if `JITSUDO_TEST_BIN` is set, `jitsudo` is that file, in every
/// suite. It names a deliberate build (another target or profile), so it is checked
/// only for existence, not against the sources.
///
/// Panics for a name that is not in the table above: what is not known cannot be
/// checked for staleness.
#[track_caller]
pub fn artifact(name: &str) -> PathBuf {
    let name = if name == "pam_jitsudo.so" {
        "libpam_jitsudo.so"
    } else {
        name
    };
    if name == "jitsudo" {
        if let Some(path) = std::env::var_os(JITSUDO_TEST_BIN) {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "{JITSUDO_TEST_BIN}={} is not a file",
                path.display()
            );
            return path;
        }
    }
    let package = ARTIFACTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| *p)
        .unwrap_or_else(|| panic!("{name} is not a workspace artifact the test bed knows"));
    let path = profile_dir().join(name);
    let built = fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: run cargo build --workspace first (cargo test builds \
                 only the tested package's own binaries)",
                path.display()
            )
        });
    let dep_info = path.with_file_name(format!("{}.d", name.strip_suffix(".so").unwrap_or(name)));
    let newer = match fs::read_to_string(&dep_info) {
        Ok(text) => newer_listed(&workspace_root(), &dep_info_sources(&text), built),
        Err(_) => newer_source(&workspace_root(), package, built),
    };
    if let Some(newer) = newer {
        panic!(
            "{} is older than {}: run cargo build --workspace first",
            path.display(),
            newer.display()
        );
    }
    path
}

/// `target/<profile>/` (or `target/<triple>/<profile>/`): where cargo put this test
/// binary, in deps/.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// The workspace root: this crate is its testbed/ directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testbed/ is in the workspace root")
        .to_path_buf()
}

/// The sources a dep-info file lists for its first target (`target: a.rs b\ c.rs`).
fn dep_info_sources(text: &str) -> Vec<PathBuf> {
    let Some(line) = text.lines().next() else {
        return Vec::new();
    };
    let Some((_, deps)) = line.split_once(": ") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut word = String::new();
    let mut chars = deps.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            ' ' => {
                if !word.is_empty() {
                    out.push(PathBuf::from(std::mem::take(&mut word)));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(PathBuf::from(word));
    }
    out
}

/// A listed file inside the workspace `root` modified after `built`, if any (registry
/// crates outside it do not change under a test).
fn newer_listed(root: &Path, sources: &[PathBuf], built: SystemTime) -> Option<PathBuf> {
    sources
        .iter()
        .filter(|p| p.starts_with(root) && !p.starts_with(root.join("target")))
        .find(|p| {
            fs::metadata(p)
                .and_then(|m| m.modified())
                // A listed source that is gone was removed after the build: stale.
                .map_or(true, |t| t > built)
        })
        .cloned()
}

/// A source of `package` (a directory relative to `root`) or of one of its workspace
/// dependencies modified after `built`, if any.
fn newer_source(root: &Path, package: &str, built: SystemTime) -> Option<PathBuf> {
    let mut todo = vec![root.join(package)];
    let mut seen: Vec<PathBuf> = Vec::new();
    while let Some(dir) = todo.pop() {
        let dir = fs::canonicalize(&dir)
            .unwrap_or_else(|e| panic!("package directory {}: {e}", dir.display()));
        if seen.contains(&dir) {
            continue;
        }
        if let Some(newer) =
            newer_rust(&dir.join("src"), built).or_else(|| newer_rust(&dir.join("build.rs"), built))
        {
            return Some(newer);
        }
        let manifest = dir.join("Cargo.toml");
        let text = fs::read_to_string(&manifest)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", manifest.display()));
        todo.extend(path_dependencies(&text).into_iter().map(|p| dir.join(p)));
        seen.push(dir);
    }
    None
}

/// The `path = "..."` of a manifest's dependencies and build-dependencies (plain and
/// per-target, inline or as `[dependencies.name]` tables). Dev-dependencies are not
/// part of a built binary.
fn path_dependencies(manifest: &str) -> Vec<String> {
    let mut section = String::new();
    let mut paths = Vec::new();
    for line in manifest.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.starts_with('[') {
            section = line.trim_matches(|c| c == '[' || c == ']').to_string();
            continue;
        }
        let built_from = section
            .split('.')
            .any(|part| part == "dependencies" || part == "build-dependencies");
        if !built_from {
            continue;
        }
        // `path` as a key: at the start, or after a space, `{` or `,`; then `= "..."`.
        for (at, _) in line.match_indices("path") {
            let key_start = line[..at]
                .chars()
                .next_back()
                .map_or(true, |c| c == ' ' || c == '{' || c == ',');
            let value = line[at + 4..].trim_start().strip_prefix('=');
            let quoted = value.and_then(|v| v.trim_start().strip_prefix('"'));
            if let (true, Some(q)) = (key_start, quoted) {
                if let Some(end) = q.find('"') {
                    paths.push(q[..end].to_string());
                }
            }
        }
    }
    paths
}

/// A `.rs` file at or under `path` modified after `time`, if any.
fn newer_rust(path: &Path, time: SystemTime) -> Option<PathBuf> {
    let meta = fs::metadata(path).ok()?;
    if meta.is_dir() {
        fs::read_dir(path)
            .ok()?
            .flatten()
            .find_map(|e| newer_rust(&e.path(), time))
    } else {
        let rust = path.extension().is_some_and(|e| e == "rs");
        (rust && meta.modified().ok()? > time).then(|| path.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_info_lists_the_first_targets_sources() {
        let text = "/w/target/debug/jitsudo-nss: /w/src/bin/jitsudo-nss.rs /w/core/src/lib.rs /w/odd\\ name.rs\n\n/w/src/bin/jitsudo-nss.rs:\n";
        assert_eq!(
            dep_info_sources(text),
            [
                PathBuf::from("/w/src/bin/jitsudo-nss.rs"),
                PathBuf::from("/w/core/src/lib.rs"),
                PathBuf::from("/w/odd name.rs")
            ]
        );
    }

    #[test]
    fn only_listed_workspace_sources_count() {
        let root = std::env::temp_dir().join(format!("testbed-dep-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("src")).unwrap();
        fs::write(root.join("src/listed.rs"), "").unwrap();
        let built = SystemTime::now() - std::time::Duration::from_secs(3600);
        let listed = [
            root.join("src/listed.rs"),
            PathBuf::from("/usr/lib/rust/x.rs"),
        ];
        assert_eq!(
            newer_listed(&root, &listed, built),
            Some(root.join("src/listed.rs"))
        );
        assert_eq!(
            newer_listed(
                &root,
                &listed,
                SystemTime::now() + std::time::Duration::from_secs(60)
            ),
            None
        );
        let gone = [root.join("src/removed.rs")];
        assert_eq!(
            newer_listed(&root, &gone, SystemTime::now()),
            Some(root.join("src/removed.rs"))
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn dependencies_are_built_from_dev_dependencies_are_not() {
        let manifest = r#"
[package]
name = "x"

[[bin]]
path = "src/main.rs"

[dependencies]
jitsudo-core = { path = "../core" } # the library
serde = "1"
xpath = { version = "1" }

[dependencies.policy]
path = "../policy"

[target.'cfg(unix)'.dependencies]
sys = { version = "1", path = "../sys" }

[build-dependencies]
gen = { path = "../gen" }

[dev-dependencies]
jitsudo-testbed = { path = "../testbed" }
"#;
        assert_eq!(
            path_dependencies(manifest),
            ["../core", "../policy", "../sys", "../gen"]
        );
    }

    /// A package `app` (src/main.rs) depending on `lib` (src/deep/x.rs), with a README
    /// in src/ and a dev-dependency `dev`; all sources written at `then`.
    fn workspace(tag: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("testbed-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for (path, text) in [
            ("app/Cargo.toml", "[dependencies]\nlib = { path = \"../lib\" }\n[dev-dependencies]\ndev = { path = \"../dev\" }\n"),
            ("app/src/main.rs", ""),
            ("app/src/README.md", ""),
            ("lib/Cargo.toml", ""),
            ("lib/src/deep/x.rs", ""),
            ("dev/Cargo.toml", ""),
            ("dev/src/lib.rs", ""),
        ] {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, text).unwrap();
        }
        root
    }

    fn touch(path: &Path, time: SystemTime) {
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(time)
            .unwrap();
    }

    #[test]
    fn stale_when_a_dependency_source_is_newer_not_a_dev_dependency_or_other_file() {
        let root = workspace("stale");
        let built = SystemTime::now() + std::time::Duration::from_secs(3600);
        let later = built + std::time::Duration::from_secs(1);
        assert_eq!(newer_source(&root, "app", built), None);
        touch(&root.join("dev/src/lib.rs"), later);
        touch(&root.join("app/src/README.md"), later);
        assert_eq!(newer_source(&root, "app", built), None);
        touch(&root.join("lib/src/deep/x.rs"), later);
        let newer = newer_source(&root, "app", built).unwrap();
        assert!(newer.ends_with("lib/src/deep/x.rs"), "{}", newer.display());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    #[should_panic(expected = "not a workspace artifact")]
    fn an_unknown_artifact_is_refused() {
        artifact("sudo");
    }

    #[test]
    fn every_artifact_names_a_package_of_this_workspace() {
        for (name, package) in ARTIFACTS {
            let manifest = workspace_root().join(package).join("Cargo.toml");
            assert!(manifest.is_file(), "{name}: no {}", manifest.display());
        }
    }
}
