//! Syslog escaping and splitting: no control character survives, no piece is too long.
#![no_main]

use jitsudo_core::log::{escape, split_line, MAX_MESSAGE_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let escaped = escape(data);
    assert!(escaped.chars().all(|c| !c.is_control()));
    for piece in split_line(&escaped, "alice", MAX_MESSAGE_BYTES) {
        assert!(piece.len() <= MAX_MESSAGE_BYTES);
        assert!(!piece.contains('\n'));
    }
});
