//! Build helpers for packaging: man pages and shell completions, generated from the same
//! clap definitions that `--help` prints, so the two cannot drift apart.
//!
//! ```text
//! cargo run -p xtask -- gen                  regenerate man/*.[158] and packaging/completions/
//!                                            (pam_jitsudo.8 is written by hand, not generated)
//! cargo run -p xtask -- check                fail if those checked-in files are stale
//! cargo run -p xtask -- man OUTDIR           write the man pages to OUTDIR
//! cargo run -p xtask -- completions OUTDIR   write bash, zsh and fish completions to OUTDIR
//! ```
//!
//! The generated files are checked in, so `cargo deb` and `cargo generate-rpm` need
//! nothing but the tree; `check` (and this crate's tests) keep them honest.
//!
//! A man page is its hand-written source `man/src/PAGE` with these directive lines
//! replaced (everything else is copied as it is):
//!
//! ```text
//! .\" xtask: title              the .TH line: name, section, date, "jitsudo VERSION"
//! .\" xtask: name               the NAME section, from the command's `about`
//! .\" xtask: options            the OPTIONS section, from the command's arguments
//! .\" xtask: options SUB...     SUB's arguments as a list (for a subsection of COMMANDS)
//! .\" xtask: remaining-commands a subsection for every subcommand no `options SUB`
//!                               line documents: its description and its options
//! ```
//!
//! The version is the crate's; the date is that of the newest entry in
//! packaging/changelog, whose version must be the crate's, so a release bumps both.
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Command, ValueHint};
use clap_complete::{Generator, Shell};

// The setuid jitsudo is a binary crate that exports nothing, so its command line is
// compiled in here from the same source (it uses nothing but clap and std).
#[path = "../../src/cli.rs"]
#[allow(dead_code)]
mod cli;

/// One man page: its file name, and the command whose options it documents.
struct Page {
    file: &'static str,
    section: &'static str,
    manual: &'static str,
    command: fn() -> Command,
}

/// Title and name of a page that documents no command line (jitsudo.toml(5)).
fn config_file_command() -> Command {
    Command::new("jitsudo.toml").about("host configuration of jitsudo")
}

const PAGES: &[Page] = &[
    Page {
        file: "jitsudo.8",
        section: "8",
        manual: "System Manager's Manual",
        command: cli::command,
    },
    Page {
        file: "jitsudoctl.1",
        section: "1",
        manual: "General Commands Manual",
        command: jitsudoctl::ctl::command,
    },
    Page {
        file: "jitsudod.8",
        section: "8",
        manual: "System Manager's Manual",
        command: jitsudod::cli::command,
    },
    Page {
        file: "jitsudo.toml.5",
        section: "5",
        manual: "File Formats Manual",
        command: config_file_command,
    },
];

/// Binaries that get shell completions.
fn completion_commands() -> Vec<(&'static str, Command)> {
    vec![
        ("jitsudo", with_value_hints(cli::command())),
        ("jitsudoctl", with_value_hints(jitsudoctl::ctl::command())),
        ("jitsudod", with_value_hints(jitsudod::cli::command())),
    ]
}

const SHELLS: &[Shell] = &[Shell::Bash, Shell::Zsh, Shell::Fish];

/// What the shells should offer for each value, from the argument's value name. Only
/// completion uses these hints, so they are added here rather than in every CLI
/// definition.
fn with_value_hints(cmd: Command) -> Command {
    cmd.mut_args(|arg| {
        // clap's derive gives every path argument AnyPath; narrow that, keep the rest.
        if !matches!(
            arg.get_value_hint(),
            ValueHint::Unknown | ValueHint::AnyPath
        ) {
            return arg;
        }
        let value_name = arg
            .get_value_names()
            .and_then(|names| names.first())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default();
        let hint = match (arg.get_id().as_str(), value_name.as_str()) {
            ("command", "COMMAND") => ValueHint::CommandWithArguments,
            ("user" | "run_as", _) | (_, "USER") => ValueHint::Username,
            (_, "FILE" | "FILE|-") => ValueHint::FilePath,
            (_, "DIR") => ValueHint::DirPath,
            (_, "URL") => ValueHint::Url,
            (_, "HOST") => ValueHint::Hostname,
            _ => return arg,
        };
        arg.value_hint(hint)
    })
    .mut_subcommands(with_value_hints)
}

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// Where `gen` and `check` keep the generated files, relative to the workspace root.
const MAN_DIR: &str = "man";
const COMPLETIONS_DIR: &str = "packaging/completions";

/// Version and date for the pages' .TH line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub version: String,
    /// YYYY-MM-DD
    pub date: String,
}

/// The root package's version, from its Cargo.toml (not from `--version`, which may
/// say more than the version).
fn crate_version(root: &Path) -> Result<String, String> {
    let path = root.join("Cargo.toml");
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .skip_while(|l| l.trim() != "[package]")
        .take_while(|l| !l.starts_with('[') || l.trim() == "[package]")
        .find_map(|l| {
            let value = l.strip_prefix("version")?.trim_start().strip_prefix('=')?;
            Some(value.trim().trim_matches('"').to_string())
        })
        .ok_or_else(|| format!("{}: no version in [package]", path.display()))
}

/// Read the newest entry of a Debian-format changelog: its version must be the crate's.
pub fn release_from_changelog(text: &str, crate_version: &str) -> Result<Release, String> {
    let first = text.lines().next().ok_or("packaging/changelog is empty")?;
    let version = first
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(v, _)| v)
        .ok_or_else(|| format!("packaging/changelog: cannot read the version in {first:?}"))?;
    // A Debian revision, if any: 0.1.0-1 is upstream 0.1.0.
    let upstream = version.rsplit_once('-').map_or(version, |(u, _)| u);
    if upstream != crate_version {
        return Err(format!(
            "packaging/changelog's newest entry is {version}, but the crate is {crate_version}; \
             add a changelog entry for {crate_version} (its date becomes the man pages' date)"
        ));
    }
    let trailer = text
        .lines()
        .find(|l| l.starts_with(" -- "))
        .ok_or("packaging/changelog: the newest entry has no ' -- name <email>  date' line")?;
    let date = trailer
        .split_once(">  ")
        .map(|(_, d)| d.trim())
        .ok_or_else(|| format!("packaging/changelog: cannot find the date in {trailer:?}"))?;
    Ok(Release {
        version: crate_version.to_string(),
        date: rfc2822_to_iso_date(date)?,
    })
}

/// `Mon, 23 Nov 2026 12:00:00 +0000` to `2026-11-23`.
fn rfc2822_to_iso_date(text: &str) -> Result<String, String> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let bad = || format!("packaging/changelog: {text:?} is not an RFC 2822 date");
    let words: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, ..] = words[..] else {
        return Err(bad());
    };
    let day: u32 = day.parse().map_err(|_| bad())?;
    let month = MONTHS.iter().position(|m| *m == month).ok_or_else(bad)? + 1;
    let year: u32 = year.parse().map_err(|_| bad())?;
    if !(1..=31).contains(&day) {
        return Err(bad());
    }
    Ok(format!("{year:04}-{month:02}-{day:02}"))
}

fn release(root: &Path) -> Result<Release, String> {
    let path = root.join("packaging/changelog");
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    release_from_changelog(&text, &crate_version(root)?)
}

fn roff_of(render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> Result<String, String> {
    let mut out = Vec::new();
    render(&mut out).map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

/// Render one page from its hand-written source.
pub(crate) fn render_page(page: &Page, source: &str, release: &Release) -> Result<String, String> {
    let cmd = (page.command)();
    let title = page
        .file
        .rsplit_once('.')
        .map_or(page.file, |(t, _)| t)
        .to_uppercase();
    let man = |cmd: Command| {
        clap_mangen::Man::new(cmd)
            .title(title.clone())
            .section(page.section)
            .date(release.date.clone())
            .source(format!("jitsudo {}", release.version))
            .manual(page.manual)
    };
    // Subcommands the source documents by hand, so `remaining-commands` skips them.
    let documented: Vec<Vec<String>> = source
        .lines()
        .filter_map(|l| l.strip_prefix(DIRECTIVE))
        .map(|d| d.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|w| w.len() > 1 && w[0] == "options")
        .map(|w| w[1..].to_vec())
        .collect();

    let mut out = format!(
        ".\\\" Generated from man/src/{} by `cargo run -p xtask -- gen`; edit that file.\n",
        page.file
    );
    for (n, line) in source.lines().enumerate() {
        let Some(directive) = line.strip_prefix(DIRECTIVE) else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let words: Vec<&str> = directive.split_whitespace().collect();
        let at = || format!("man/src/{}:{}", page.file, n + 1);
        let text = match words[..] {
            // The title keeps the roff crate's definition of the \*(Aq string; the other
            // fragments repeat it, and lose it below.
            ["title"] => roff_of(|w| man(cmd.clone()).render_title(w))?,
            ["name"] => roff_of(|w| man(cmd.clone()).render_name_section(w))?,
            ["options"] => roff_of(|w| man(cmd.clone()).render_options_section(w))?,
            ["options", ref path @ ..] => {
                let sub = find_subcommand(&cmd, path)
                    .ok_or_else(|| format!("{}: {} has no subcommand {path:?}", at(), page.file))?;
                options_list(&man(sub.clone())).map_err(|e| format!("{}: {e}", at()))?
            }
            ["remaining-commands"] => {
                let mut text = String::new();
                for (path, sub) in leaf_subcommands(&cmd, &[]) {
                    if documented.contains(&path) {
                        continue;
                    }
                    // The heading names the positional arguments; those without help
                    // text are not listed again below it.
                    let positionals: Vec<String> = sub
                        .get_positionals()
                        .map(|a| {
                            let names = a.get_value_names().map(|v| v.join(" "));
                            format!(
                                "\\fI{}\\fP",
                                names.unwrap_or_else(|| a.get_id().to_string())
                            )
                        })
                        .collect();
                    let sub = sub.mut_args(|a| {
                        if a.is_positional() && a.get_help().is_none() {
                            a.hide(true)
                        } else {
                            a
                        }
                    });
                    text.push_str(&format!(
                        ".SS {} {}\n",
                        cmd.get_name(),
                        path.iter()
                            .map(String::as_str)
                            .chain(positionals.iter().map(String::as_str))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ));
                    let description = strip_aq_preamble(&roff_of(|w| {
                        man(sub.clone()).render_description_section(w)
                    })?);
                    text.push_str(
                        description
                            .strip_prefix(".SH DESCRIPTION\n")
                            .unwrap_or(&description),
                    );
                    text.push_str(
                        &options_list(&man(sub.clone())).map_err(|e| format!("{}: {e}", at()))?,
                    );
                }
                text
            }
            _ => return Err(format!("{}: unknown directive {line:?}", at())),
        };
        let text = if words[..] == ["title"] {
            text
        } else {
            strip_aq_preamble(&text)
        };
        out.push_str(&wrap_text_lines(&tidy_breaks(&text), MAX_LINE_BYTES));
    }
    Ok(out)
}

/// A source line that asks for generated text.
const DIRECTIVE: &str = ".\\\" xtask:";

fn find_subcommand<'a>(cmd: &'a Command, path: &[&str]) -> Option<&'a Command> {
    path.iter().try_fold(cmd, |c, name| c.find_subcommand(name))
}

/// Every subcommand that can be run: those without subcommands of their own, and those
/// that also take arguments themselves (`audit [OPTIONS]` beside `audit verify`), with
/// their paths, in the order of the definition.
fn leaf_subcommands(cmd: &Command, prefix: &[String]) -> Vec<(Vec<String>, Command)> {
    let mut out = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let mut path = prefix.to_vec();
        path.push(sub.get_name().to_string());
        // Before `build`, a command's arguments are only those it defines itself.
        let own_arguments = sub.get_arguments().any(|a| !a.is_hide_set());
        if !sub.has_subcommands() || own_arguments {
            out.push((path.clone(), sub.clone()));
        }
        if sub.has_subcommands() {
            out.extend(leaf_subcommands(sub, &path));
        }
    }
    out
}

/// A command's options as a bare `.TP` list, for a subsection of COMMANDS: the
/// options section without its ".SH OPTIONS" heading.
fn options_list(man: &clap_mangen::Man) -> Result<String, String> {
    let text = strip_aq_preamble(&roff_of(|w| man.render_options_section(w))?);
    text.strip_prefix(".SH OPTIONS\n")
        .map(str::to_string)
        .ok_or_else(|| "unexpected options rendering".to_string())
}

/// clap_mangen separates an option's help from its list of possible values with
/// `.br`, an empty line and `.br` again, which mandoc's lint flags. A run of `.br` and
/// empty lines becomes one `.sp` if it holds an empty line (an empty line is a vertical
/// space in roff), else one `.br`.
pub fn tidy_breaks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run: Option<bool> = None; // Some(has_empty_line) while inside a run
    for line in text.lines() {
        if line == ".br" || line.is_empty() {
            let has_empty = run.unwrap_or(false) || line.is_empty();
            run = Some(has_empty);
            continue;
        }
        if let Some(has_empty) = run.take() {
            out.push_str(if has_empty { ".sp\n" } else { ".br\n" });
        }
        out.push_str(line);
        out.push('\n');
    }
    if let Some(has_empty) = run {
        out.push_str(if has_empty { ".sp\n" } else { ".br\n" });
    }
    out
}

/// mandoc's lint asks for input lines of at most 80 bytes.
const MAX_LINE_BYTES: usize = 80;

const AQ_PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

fn strip_aq_preamble(text: &str) -> String {
    text.strip_prefix(AQ_PREAMBLE).unwrap_or(text).to_string()
}

/// Re-wrap long text lines of generated roff at spaces. In fill mode a line break is
/// just a space, so this changes the source, not the output. Control lines, the tag
/// line after `.TP`, and no-fill blocks are left alone; a continuation line that would
/// start with a control character is protected with `\&`.
pub fn wrap_text_lines(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len());
    let mut after_tp = false;
    let mut no_fill = false;
    for line in text.lines() {
        let is_control = line.starts_with('.') || line.starts_with('\'');
        if is_control {
            let request = line[1..].split_whitespace().next().unwrap_or("");
            match request {
                "EX" | "nf" => no_fill = true,
                "EE" | "fi" => no_fill = false,
                _ => {}
            }
        }
        if is_control || after_tp || no_fill || line.len() <= max {
            out.push_str(line);
            out.push('\n');
            after_tp = is_control && line.split_whitespace().next() == Some(".TP");
            continue;
        }
        after_tp = false;
        let mut current = String::new();
        for word in line.split(' ') {
            if !current.is_empty() && current.len() + 1 + word.len() > max {
                out.push_str(&current);
                out.push('\n');
                current.clear();
            }
            if current.is_empty() {
                if word.starts_with('.') || word.starts_with('\'') {
                    current.push_str("\\&");
                }
            } else {
                current.push(' ');
            }
            current.push_str(word);
        }
        out.push_str(&current);
        out.push('\n');
    }
    out
}

/// Every generated file: (path relative to the workspace root, contents).
pub fn generate_all(root: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>, String> {
    let mut files = man_pages(root, Path::new(MAN_DIR))?;
    files.extend(completions(Path::new(COMPLETIONS_DIR))?);
    Ok(files)
}

fn man_pages(root: &Path, out_dir: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>, String> {
    let release = release(root)?;
    let mut files = Vec::new();
    for page in PAGES {
        let src_path = root.join(MAN_DIR).join("src").join(page.file);
        let source = fs::read_to_string(&src_path)
            .map_err(|e| format!("cannot read {}: {e}", src_path.display()))?;
        let text = render_page(page, &source, &release)?;
        files.push((out_dir.join(page.file), text.into_bytes()));
    }
    Ok(files)
}

fn completions(out_dir: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>, String> {
    let mut files = Vec::new();
    for (name, cmd) in completion_commands() {
        for shell in SHELLS {
            let mut cmd = cmd.clone();
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut cmd, name, &mut out);
            files.push((out_dir.join(shell.file_name(name)), out));
        }
    }
    Ok(files)
}

fn write_files(base: &Path, files: &[(PathBuf, Vec<u8>)]) -> Result<(), String> {
    for (path, bytes) in files {
        let path = base.join(path);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Files whose checked-in contents differ from what would be generated.
pub fn stale_files(root: &Path) -> Result<Vec<PathBuf>, String> {
    Ok(generate_all(root)?
        .into_iter()
        .filter(|(path, bytes)| fs::read(root.join(path)).ok().as_ref() != Some(bytes))
        .map(|(path, _)| path)
        .collect())
}

const USAGE: &str = "usage: cargo run -p xtask -- gen | check | man OUTDIR | completions OUTDIR";

fn run(args: &[String]) -> Result<(), String> {
    let root = workspace_root();
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["gen"] => write_files(&root, &generate_all(&root)?),
        ["check"] => {
            let stale = stale_files(&root)?;
            if stale.is_empty() {
                println!("man pages and completions are up to date");
                return Ok(());
            }
            let names: Vec<String> = stale.iter().map(|p| p.display().to_string()).collect();
            Err(format!(
                "out of date: {}; run: cargo run -p xtask -- gen",
                names.join(", ")
            ))
        }
        ["man", dir] => write_files(&cwd, &man_pages(&root, Path::new(dir))?),
        ["completions", dir] => write_files(&cwd, &completions(Path::new(dir))?),
        _ => Err(USAGE.to_string()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_in_pages_and_completions_are_current() {
        let stale = stale_files(&workspace_root()).unwrap();
        assert!(
            stale.is_empty(),
            "generated files are out of date: {stale:?}; run: cargo run -p xtask -- gen"
        );
    }

    #[test]
    fn crate_version_is_read_from_the_root_manifest() {
        assert_eq!(
            crate_version(&workspace_root()).unwrap(),
            cli::command()
                .get_version()
                .unwrap_or_default()
                .split_whitespace()
                .next()
                .unwrap()
        );
    }

    #[test]
    fn changelog_gives_date_and_checks_version() {
        let text = "jitsudo (0.1.0) unstable; urgency=medium\n\n  * Initial release.\n\n \
                    -- A Person <a@example.org>  Mon, 23 Nov 2026 12:00:00 +0000\n";
        let r = release_from_changelog(text, "0.1.0").unwrap();
        assert_eq!(r.date, "2026-11-23");
        assert_eq!(r.version, "0.1.0");
        let e = release_from_changelog(text, "0.2.0").unwrap_err();
        assert!(e.contains("entry for 0.2.0"), "{e}");
        assert!(release_from_changelog(&text.replace("0.1.0)", "0.1.0-1)"), "0.1.0").is_ok());
    }

    #[test]
    fn default_config_is_valid_and_trusts_no_key() {
        let path = workspace_root().join("packaging/jitsudo.toml");
        let text = fs::read_to_string(&path).unwrap();
        let config = jitsudo_core::config::parse(&path, &text).unwrap();
        assert!(config.trusted_keys.is_empty());
        assert_eq!(config.log, jitsudo_core::config::LogConfig::default());
    }

    #[test]
    fn default_service_config_is_valid_and_policy_denies_everything() {
        let root = workspace_root();
        let path = root.join("packaging/jitsudod/jitsudod.toml");
        let text = fs::read_to_string(&path).unwrap();
        // The admin creates the signing key after installing; a fresh one stands in.
        let config = jitsudod::config::parse(&path, &text, &|key| {
            assert_eq!(key, Path::new("/etc/jitsudo/keys/approvals.key"));
            jitsudo_core::grant::keys::SecretKey::generate("approvals")
        })
        .unwrap();
        assert!(config.listen.ip().is_loopback());
        assert!(config.tls.is_none());
        assert_eq!(config.database, "sqlite:///var/lib/jitsudod/jitsudod.db");
        assert_eq!(config.policy, Path::new("/etc/jitsudo/policy.toml"));

        let path = root.join("packaging/jitsudod/policy.toml");
        let policy = jitsudo_policy::policy::load(&path).unwrap();
        assert!(
            policy.rules.is_empty(),
            "the shipped policy must deny everything"
        );
        // The commented-out examples are valid rules once uncommented.
        let text = fs::read_to_string(&path).unwrap();
        let examples: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| {
                *l == "[[rule]]"
                    || l.split_once(" = ").is_some_and(|(k, _)| {
                        k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    })
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let policy = jitsudo_policy::policy::parse(&path, &examples).unwrap();
        assert_eq!(policy.rules.len(), 2, "{examples}");
    }

    #[test]
    fn config_page_lists_every_variable_never_passed_on() {
        let page = fs::read_to_string(workspace_root().join("man/src/jitsudo.toml.5")).unwrap();
        let page = page.replace("\\-", "-");
        for name in jitsudo_core::config::NEVER_KEEP {
            assert!(
                page.lines()
                    .any(|l| l.starts_with(".B") && l.contains(name)),
                "jitsudo.toml(5) does not list {name} under env_keep"
            );
        }
    }

    #[test]
    fn long_text_lines_wrap_but_tags_and_examples_do_not() {
        let long = "word ".repeat(30);
        let text = format!(".TP\n{long}\n{long}\n.EX\n{long}\n.EE\n.x {long}\n");
        let out = wrap_text_lines(&text, 80);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], long, "the tag line after .TP stays whole");
        assert!(lines[2..5].iter().all(|l| l.len() <= 80));
        assert!(lines.contains(&long.as_str()), "no-fill text stays whole");
        assert_eq!(
            out.split_whitespace().count(),
            text.split_whitespace().count()
        );
        assert_eq!(
            wrap_text_lines(&format!("{} .dot", "a".repeat(80)), 80),
            format!("{}\n\\&.dot\n", "a".repeat(80))
        );
    }

    #[test]
    fn break_runs_collapse() {
        assert_eq!(tidy_breaks("a\n.br\n\n.br\nb\n"), "a\n.sp\nb\n");
        assert_eq!(tidy_breaks("a\n.br\nb\n"), "a\n.br\nb\n");
    }

    #[test]
    fn unknown_directive_is_an_error() {
        let release = Release {
            version: "0.1.0".into(),
            date: "2026-11-23".into(),
        };
        let e = render_page(&PAGES[0], ".\\\" xtask: nonsense\n", &release).unwrap_err();
        assert!(e.contains("jitsudo.8:1"), "{e}");
    }
}
