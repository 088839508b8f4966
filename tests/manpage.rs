//! The man pages against the real binaries: every long option that `--help` shows must
//! be in the page, the pages must be lint-clean for mandoc, and they must carry this
//! crate's version. (xtask's tests check that man/ is what the generator makes from
//! man/src/ and the CLI definitions.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every page in man/: the generated ones and the hand-written pam_jitsudo.8.
const PAGES: &[&str] = &[
    "jitsudo.8",
    "jitsudoctl.1",
    "jitsudo.toml.5",
    "jitsudod.8",
    "pam_jitsudo.8",
];

fn page_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("man").join(name)
}

/// The page's roff source with escapes that sit inside option names removed, so
/// `\fB\-\-user\fR` reads `--user`.
fn page_text(name: &str) -> String {
    let path = page_path(name);
    let roff = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut text = roff.replace("\\-", "-").replace("\\&", "");
    for font in ["\\fB", "\\fI", "\\fR", "\\fP"] {
        text = text.replace(font, "");
    }
    text
}

fn help(binary: &str, args: &[&str]) -> String {
    let out = Command::new(binary)
        .args(args)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"));
    assert!(
        out.status.success(),
        "{binary} {args:?} --help failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// Every `--long-option` mentioned in a help text.
fn long_options(help: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = help.as_bytes();
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'-';
    let mut i = 0;
    while let Some(at) = help[i..].find("--") {
        let start = i + at;
        let boundary = start == 0 || !is_name(bytes[start - 1]);
        let mut end = start + 2;
        while end < bytes.len() && is_name(bytes[end]) {
            end += 1;
        }
        if boundary && end > start + 2 && bytes[start + 2].is_ascii_alphanumeric() {
            found.insert(help[start..end].to_string());
        }
        i = end.max(start + 2);
    }
    found
}

/// Does `text` mention `option` as a whole word (`--run` is not in `--run-as`)?
fn mentions(text: &str, option: &str) -> bool {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '-';
    text.match_indices(option).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + option.len()..].chars().next();
        !before.is_some_and(is_name) && !after.is_some_and(is_name)
    })
}

fn assert_documented(page: &str, what: &str, help: &str) {
    let text = page_text(page);
    let missing: Vec<String> = long_options(help)
        .into_iter()
        .filter(|o| !mentions(&text, o))
        .collect();
    assert!(
        missing.is_empty(),
        "`{what} --help` shows {missing:?}, which man/{page} does not mention; \
         regenerate the pages with: cargo run -p xtask -- gen"
    );
}

/// The subcommands a help text lists under "Commands:".
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim_end() != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn every_jitsudo_option_is_in_jitsudo_8() {
    let binary = env!("CARGO_BIN_EXE_jitsudo");
    let help = help(binary, &[]);
    assert!(long_options(&help).contains("--import"), "{help}");
    assert_documented("jitsudo.8", "jitsudo", &help);
}

#[test]
fn every_jitsudoctl_option_is_in_jitsudoctl_1() {
    // jitsudoctl is its own package (ctl/), which cargo test does not build: the one
    // lookup fails the test if it is missing or older than its sources.
    let ctl = jitsudo_testbed::artifact("jitsudoctl");
    let binary = ctl.to_str().unwrap();
    let top = help(binary, &[]);
    assert_documented("jitsudoctl.1", "jitsudoctl", &top);
    let mut todo: Vec<Vec<String>> = subcommands(&top).into_iter().map(|s| vec![s]).collect();
    assert!(
        todo.iter().any(|p| p == &["mint".to_string()]),
        "no subcommands found in:\n{top}"
    );
    let mut seen = 0;
    while let Some(path) = todo.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let help = help(binary, &args);
        assert_documented(
            "jitsudoctl.1",
            &format!("jitsudoctl {}", path.join(" ")),
            &help,
        );
        for sub in subcommands(&help) {
            let mut deeper = path.clone();
            deeper.push(sub);
            todo.push(deeper);
        }
        seen += 1;
    }
    assert!(seen >= 3, "expected keygen, mint and verify at least");
}

#[test]
fn pages_carry_the_crate_version() {
    let want = format!("\"jitsudo {}\"", env!("CARGO_PKG_VERSION"));
    for page in PAGES {
        let path = page_path(page);
        let roff = std::fs::read_to_string(&path).expect("page exists");
        let th = roff
            .lines()
            .find(|l| l.starts_with(".TH "))
            .unwrap_or_default();
        assert!(
            th.contains(&want),
            "{}: {th:?} lacks {want}",
            path.display()
        );
    }
}

#[test]
fn mandoc_lint_is_clean() {
    let paths: Vec<PathBuf> = PAGES.iter().map(|p| page_path(p)).collect();
    let out = match Command::new("mandoc").arg("-Tlint").args(&paths).output() {
        Ok(out) => out,
        Err(e) => {
            panic!("cannot run mandoc ({e}); the man page lint needs it: apt-get install mandoc")
        }
    };
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "mandoc -Tlint is not clean:\n{report}"
    );
}

#[test]
fn option_scanner() {
    let found = long_options("  -u, --user <USER>  run as\n      --run-as X; a -- b, --no-wait\n");
    let found: Vec<&str> = found.iter().map(String::as_str).collect();
    assert_eq!(found, ["--no-wait", "--run-as", "--user"]);
    assert!(mentions("see --run-as and --run.", "--run"));
    assert!(!mentions("see --run-as", "--run"));
}
