//! Approval policy text: any input is a policy or an error naming file and line, and
//! the policy's `*`/`?` globs answer any pattern and text without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = std::path::Path::new("/etc/jitsudod/policy.toml");
    if let Err(e) = jitsudo_policy::policy::parse(file, text) {
        assert!(e.0.starts_with("/etc/jitsudod/policy.toml"), "{e}");
    }
    // The first line is a glob pattern, the rest the text it is matched against.
    let (pattern, subject) = text.split_once('\n').unwrap_or((text, ""));
    let matched = jitsudo_policy::policy::glob(pattern, subject);
    if !pattern.contains(['*', '?']) {
        assert_eq!(matched, pattern == subject);
    }
});
