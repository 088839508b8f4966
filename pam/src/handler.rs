//! What the module needs from PAM, as a plain Rust trait: the user, a few items, the
//! conversation, and a note kept on the handle between phases. `ffi` implements it over
//! libpam; the tests implement it with a scripted fake.
#![forbid(unsafe_code)]

use zeroize::Zeroizing;

/// The PAM items the module reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// PAM_SERVICE: the stack's name (sshd, login, …).
    Service,
    /// PAM_RHOST: where the login comes from.
    RHost,
    /// PAM_TTY: the terminal (or "ssh" for sessions without one).
    Tty,
}

pub trait PamHandler {
    /// The user logging in (pam_get_user; may itself ask through the conversation).
    fn user(&mut self) -> Result<String, String>;

    /// An item's value; `None` when unset or unreadable.
    fn item(&self, item: Item) -> Option<String>;

    /// Ask the user for something that is not echoed; `None` when they gave nothing.
    fn prompt_secret(&mut self, prompt: &str) -> Result<Option<Zeroizing<String>>, String>;

    /// Tell the user why they were refused. Best effort: a conversation that cannot show
    /// messages changes nothing.
    fn error_message(&mut self, text: &str);

    /// Keep a short note on the handle for a later phase of the same login (the account
    /// phase records which grant admitted the user, the session phase logs it).
    fn set_note(&mut self, note: &str) -> Result<(), String>;

    fn note(&self) -> Option<String>;

    /// PAM_SILENT was passed: send no messages.
    fn silent(&self) -> bool;
}
