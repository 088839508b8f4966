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
/// The one staleness rule: the artifact must exist and be no older than every Rust
/// source (`src/**/*.rs` and `build.rs`) of its package and of each workspace package
/// it depends on, transitively, as the `path` dependencies in the packages'
/// Cargo.toml say (so a change under core/src makes jitsudoctl, jitsudo and the PAM
/// module stale alike). Otherwise the test fails, naming the artifact and the newer
/// source, and asks for `cargo build --workspace`. Rebuilding from inside a running
/// test is not attempted: cargo holds the build directory's lock.
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
    if let Some(newer) = newer_source(&workspace_root(), package, built) {
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
