//! Checks of what callers send, before anything is stored: names, ids, reasons, and the
//! requested command, which becomes the grant's exact command spec.
#![forbid(unsafe_code)]

use std::net::IpAddr;

use jitsudo_core::grant::{self, Kind};
use jitsudo_core::matcher::{ArgRule, CommandSpec};
use jitsudo_core::text;
use jitsudo_core::wire::NewRequest;
use jitsudo_policy::policy;

use crate::service::error::{invalid, Result};

/// The exact command spec of a requested argv.
fn command_spec_of(argv: &[String]) -> Result<String> {
    let Some((path, args)) = argv.split_first() else {
        return Err(invalid("argv is empty"));
    };
    if argv.len() > 256 || argv.iter().map(String::len).sum::<usize>() > 16 * 1024 {
        return Err(invalid(
            "the command is too long (at most 256 words and 16 KiB)",
        ));
    }
    jitsudo_core::matcher::check_program_path(path).map_err(|e| invalid(e.to_string()))?;
    let spec = CommandSpec {
        pin: None,
        path: path.clone(),
        args: if args.is_empty() {
            ArgRule::None
        } else {
            ArgRule::Exact(args.to_vec())
        },
    };
    let text = spec.to_string();
    // Round trip: control characters and the like are refused here, as hosts would.
    match CommandSpec::parse(&text) {
        Ok(back) if back == spec => Ok(text),
        Ok(_) => Err(invalid("the command cannot be written as a command spec")),
        Err(e) => Err(invalid(format!("command: {e}"))),
    }
}

/// The files of a requested edit grant, each checked as hosts check them, joined by
/// spaces (no file of an edit grant has one) for the request's command column.
fn edit_files_of(files: &[String]) -> Result<String> {
    if files.is_empty() || files.len() > 64 {
        return Err(invalid("an edit request names 1 to 64 files"));
    }
    for file in files {
        jitsudo_core::matcher::check_edit_path(file)
            .map_err(|e| invalid(format!("file {file:?}: {e}")))?;
    }
    Ok(files.join(" "))
}

/// Refuse `value` if it holds a character that changes how text reads without showing
/// itself (bidi overrides and isolates, zero-width characters, other format characters,
/// line and paragraph separators; see `jitsudo_core::text`): approvers must read
/// exactly what was asked and what will run.
pub fn shown_as_is(field: &str, value: &str) -> Result<()> {
    match text::first_hidden(value) {
        None => Ok(()),
        Some(c) => Err(invalid(format!(
            "{field} contains {}, an invisible formatting character (bidi, zero-width or \
             line separator) that would make approvers read something else than what was \
             sent; remove it",
            text::code_point(c)
        ))),
    }
}

/// Check what the host sent and turn argv into the exact command spec of the grant
/// (for an edit request, its files).
pub fn request(r: &NewRequest) -> Result<(String, Option<IpAddr>)> {
    if !grant::valid_user_name(&r.user) {
        return Err(invalid(format!(
            "user {:?} is not a valid user name",
            r.user
        )));
    }
    if !grant::valid_user_name(&r.run_as) {
        return Err(invalid(format!(
            "run_as {:?} is not a valid user name",
            r.run_as
        )));
    }
    if r.groups.len() > 1024 || r.groups.iter().any(|g| !grant::valid_user_name(g)) {
        return Err(invalid("groups must be at most 1024 valid group names"));
    }
    for (i, word) in r.argv.iter().enumerate() {
        shown_as_is(&format!("argv[{i}]"), word)?;
    }
    let text = match r.kind {
        Kind::Exec => command_spec_of(&r.argv)?,
        Kind::Edit if r.run_as != "root" => {
            return Err(invalid("an edit grant has no run_as user; it must be root"))
        }
        Kind::Edit => edit_files_of(&r.argv)?,
        Kind::Login => {
            return Err(invalid(
                "login grants are not requested through the host API",
            ))
        }
    };
    if r.reason.len() > 1000 || r.reason.chars().any(|c| c.is_control()) {
        return Err(invalid(
            "reason must be at most 1000 characters without control characters",
        ));
    }
    shown_as_is("reason", &r.reason)?;
    if let Some(d) = r.duration {
        if d == 0 || d > policy::MAX_DURATION_CEILING {
            return Err(invalid("duration must be between 1s and 12h"));
        }
    }
    if let Some(t) = &r.ticket {
        grant::valid_ticket(t).map_err(|e| invalid(format!("ticket: {e}")))?;
    }
    if let Some(g) = &r.extends {
        grant_id(g)?;
    }
    let source = match &r.source {
        None => None,
        Some(s) => Some(
            s.parse::<IpAddr>()
                .map_err(|_| invalid(format!("source {s:?} is not an IP address")))?,
        ),
    };
    Ok((text, source))
}

pub fn request_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(format!("{id:?} is not a request id")));
    }
    Ok(())
}

pub fn grant_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(invalid(format!("{id:?} is not a grant id")));
    }
    Ok(())
}

/// An approval's comment may be empty.
pub fn comment(comment: &str) -> Result<()> {
    if comment.len() > 1000 || comment.chars().any(|c| c.is_control()) {
        return Err(invalid(
            "comment must be at most 1000 characters without control characters",
        ));
    }
    shown_as_is("comment", comment)
}

/// A denial's or revocation's reason may not.
pub fn reason(reason: &str) -> Result<()> {
    if reason.trim().is_empty() || reason.len() > 1000 || reason.chars().any(|c| c.is_control()) {
        return Err(invalid(
            "reason is required: 1-1000 characters without control characters",
        ));
    }
    shown_as_is("reason", reason)
}

pub fn host_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 253
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(invalid(format!(
            "{name:?} is not a valid host id (letters, digits, '-', '_' and '.')"
        )));
    }
    Ok(())
}
