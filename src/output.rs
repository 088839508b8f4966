//! Messages for the user. Unlike `println!`, these never panic: a caller may hand us a
//! closed pipe or a file over its size limit, and that must not turn into a crash in
//! the middle of a decision.
#![forbid(unsafe_code)]

use std::io::Write;

pub fn stdout_line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

pub fn stderr_line(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Print a line on stdout, ignoring write errors.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => { $crate::output::stdout_line(&format!($($arg)*)) };
}

/// Print a line on stderr, ignoring write errors.
#[macro_export]
macro_rules! complain {
    ($($arg:tt)*) => { $crate::output::stderr_line(&format!($($arg)*)) };
}
