//! The PAM conversation for the `jitsudo` service, and what its outcome means.
#![forbid(unsafe_code)]

use libc::c_int;
use pam::constants::PamResultCode;
use pam::items::ItemType;
use zeroize::Zeroizing;

use crate::sys::{self, Conversation, Pam, Terminal};

/// The PAM service whose stack confirms the caller (/etc/pam.d/jitsudo).
pub const SERVICE: &str = "jitsudo";
/// Password attempts before giving up, as sudo's default `passwd_tries`.
const ATTEMPTS: u32 = 3;

/// How the authentication ended; the exit status is 0, 1 or 2.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// PAM accepted the caller (auth and account).
    Confirmed,
    /// PAM refused the caller: wrong password, locked or expired account, cancelled.
    Refused(String),
    /// Authentication could not be done: no terminal to ask on, a broken PAM stack.
    Failed(String),
}

impl Verdict {
    pub fn exit_code(&self) -> u8 {
        match self {
            Verdict::Confirmed => 0,
            Verdict::Refused(_) => 1,
            Verdict::Failed(_) => 2,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Verdict::Confirmed => "authenticated",
            Verdict::Refused(r) | Verdict::Failed(r) => r,
        }
    }
}

/// Talks on the caller's terminal; with none, can show messages (on stderr) but not ask.
pub struct TtyConversation {
    terminal: Option<Terminal>,
    /// A module asked for input and there was no terminal to ask on.
    pub needed_terminal: bool,
    /// A module asked for input on the terminal during this attempt.
    pub prompted: bool,
}

impl TtyConversation {
    pub fn new(terminal: Option<Terminal>) -> TtyConversation {
        TtyConversation {
            terminal,
            needed_terminal: false,
            prompted: false,
        }
    }

    fn show(&mut self, text: &str) {
        match &mut self.terminal {
            Some(t) => t.write(&format!("{text}\n")),
            None => eprintln!("{text}"),
        }
    }
}

impl Conversation for TtyConversation {
    fn ask(&mut self, prompt: &str, echo: bool) -> Option<Zeroizing<Vec<u8>>> {
        let Some(terminal) = &mut self.terminal else {
            self.needed_terminal = true;
            return None;
        };
        self.prompted = true;
        terminal.ask(prompt, echo).ok()
    }

    fn tell(&mut self, text: &str, _error: bool) {
        self.show(text);
    }
}

fn is(code: c_int, want: PamResultCode) -> bool {
    code == want as c_int
}

/// Codes that mean "PAM could not do its job", not "PAM said no".
fn is_internal_error(code: c_int) -> bool {
    [
        PamResultCode::PAM_OPEN_ERR,
        PamResultCode::PAM_SYMBOL_ERR,
        PamResultCode::PAM_SERVICE_ERR,
        PamResultCode::PAM_SYSTEM_ERR,
        PamResultCode::PAM_BUF_ERR,
        PamResultCode::PAM_ABORT,
    ]
    .into_iter()
    .any(|c| code == c as c_int)
}

const NO_TERMINAL: &str = "the PAM service jitsudo wants to ask for input, but there is no terminal to ask on; run jitsudo from a terminal";

/// Run `auth` then `account` of the PAM service `jitsudo` for `user`, talking on
/// `terminal`. `tty` (e.g. /dev/pts/3) becomes PAM_TTY.
pub fn confirm(user: &str, tty: Option<&str>, terminal: Option<Terminal>) -> Verdict {
    let (Some(service), Some(c_user)) = (sys::c_string(SERVICE), sys::c_string(user)) else {
        return Verdict::Failed("bad user name".to_string());
    };
    let mut pam = match Pam::start(&service, &c_user, TtyConversation::new(terminal)) {
        Ok(pam) => pam,
        Err(code) => {
            return Verdict::Failed(format!(
                "cannot start the PAM service {SERVICE} (PAM error {code})"
            ))
        }
    };
    if let Some(tty) = tty.and_then(sys::c_string) {
        if let Err(code) = pam.set_item(ItemType::Tty, &tty) {
            return Verdict::Failed(format!("cannot set PAM_TTY: {}", pam.describe(code)));
        }
    }
    if let Err(code) = pam.set_item(ItemType::RUser, &c_user) {
        return Verdict::Failed(format!("cannot set PAM_RUSER: {}", pam.describe(code)));
    }

    let mut attempt = 1;
    loop {
        pam.conversation().prompted = false;
        let code = pam.authenticate();
        if code == sys::SUCCESS {
            break;
        }
        if pam.conversation().needed_terminal {
            return Verdict::Failed(NO_TERMINAL.to_string());
        }
        if is_internal_error(code) {
            return Verdict::Failed(format!("PAM service {SERVICE}: {}", pam.describe(code)));
        }
        // Only a typed password that was wrong earns another try.
        let wrong = is(code, PamResultCode::PAM_AUTH_ERR) || is(code, PamResultCode::PAM_MAXTRIES);
        if wrong && pam.conversation().prompted {
            if attempt < ATTEMPTS && is(code, PamResultCode::PAM_AUTH_ERR) {
                attempt += 1;
                pam.conversation().show("Sorry, try again.");
                continue;
            }
            return Verdict::Refused(incorrect_attempts(attempt));
        }
        if is(code, PamResultCode::PAM_CONV_ERR) {
            return Verdict::Refused("authentication cancelled".to_string());
        }
        return Verdict::Refused(pam.describe(code));
    }

    let code = pam.acct_mgmt();
    if code == sys::SUCCESS {
        return Verdict::Confirmed;
    }
    if pam.conversation().needed_terminal {
        return Verdict::Failed(NO_TERMINAL.to_string());
    }
    if is(code, PamResultCode::PAM_NEW_AUTHTOK_REQD) {
        return Verdict::Refused(
            "your password has expired; change it with passwd, then try again".to_string(),
        );
    }
    if is_internal_error(code) {
        return Verdict::Failed(format!("PAM service {SERVICE}: {}", pam.describe(code)));
    }
    Verdict::Refused(format!("account refused: {}", pam.describe(code)))
}

/// What to say after `count` wrong passwords (sudo's words).
fn incorrect_attempts(count: u32) -> String {
    if count == 1 {
        "1 incorrect password attempt".to_string()
    } else {
        format!("{count} incorrect password attempts")
    }
}

/// Arguments: `USER TTY`, TTY empty when the caller has no terminal.
pub fn parse_args(args: &[String]) -> Result<(String, Option<String>), String> {
    let [_, user, tty] = args else {
        return Err("usage: jitsudo-auth USER TTY (run by jitsudo, not by hand)".to_string());
    };
    let valid_user = !user.is_empty()
        && user.len() <= 256
        && !user.starts_with('-')
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-$".contains(&b));
    if !valid_user {
        return Err(format!("{user:?} is not a valid user name"));
    }
    let tty = (!tty.is_empty()).then(|| tty.clone());
    if tty.as_deref().is_some_and(|t| t.contains('\0')) {
        return Err("bad tty name".to_string());
    }
    Ok((user.clone(), tty))
}

/// One line, no control characters: what jitsudo logs and shows.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments() {
        assert_eq!(
            parse_args(&args(&["x", "alice", "/dev/pts/3"])).unwrap(),
            ("alice".to_string(), Some("/dev/pts/3".to_string()))
        );
        assert_eq!(parse_args(&args(&["x", "alice", ""])).unwrap().1, None);
        assert!(parse_args(&args(&["x", "alice"])).is_err());
        assert!(parse_args(&args(&["x", "-alice", ""])).is_err());
        assert!(parse_args(&args(&["x", "al ice", ""])).is_err());
        assert!(parse_args(&args(&["x", "", ""])).is_err());
    }

    #[test]
    fn verdict_codes_and_lines() {
        assert_eq!(Verdict::Confirmed.exit_code(), 0);
        assert_eq!(Verdict::Refused("no".into()).exit_code(), 1);
        assert_eq!(Verdict::Failed("broken".into()).exit_code(), 2);
        assert_eq!(one_line("a\nb\tc "), "a b c");
        assert_eq!(incorrect_attempts(1), "1 incorrect password attempt");
        assert_eq!(incorrect_attempts(3), "3 incorrect password attempts");
    }

    #[test]
    fn no_terminal_cannot_ask() {
        let mut conv = TtyConversation::new(None);
        assert!(conv.ask("Password: ", false).is_none());
        assert!(conv.needed_terminal);
        assert!(!conv.prompted);
    }
}
