//! jitsudod(8) against the real binary: every long option that `jitsudod --help` and
//! each subcommand's `--help` show must be in the page. (xtask checks that the page is
//! what the generator makes from man/src/jitsudod.8 and the CLI definition;
//! tests/manpage.rs at the workspace root lints it with mandoc.)

use std::path::Path;
use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_jitsudod"))
        .args(args)
        .arg("--help")
        .output()
        .expect("run jitsudod");
    assert!(out.status.success(), "jitsudod {args:?} --help failed");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// Every `--long-option` in a help text.
fn long_options(help: &str) -> Vec<String> {
    help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(str::to_string)
        .collect()
}

#[test]
fn every_jitsudod_option_is_in_jitsudod_8() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../man/jitsudod.8");
    let page = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .replace("\\-", "-");
    let mut checked = 0;
    for args in [&[][..], &["serve"], &["add-admin"], &["check-policy"]] {
        let help = help(args);
        for option in long_options(&help) {
            assert!(
                page.contains(&option),
                "`jitsudod {} --help` shows {option}, which man/jitsudod.8 does not \
                 mention; regenerate it with: cargo run -p xtask -- gen",
                args.join(" ")
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 4,
        "expected --config, --fake-now, --group, --help at least"
    );
}
