//! Syslog escaping and splitting: no control character survives, no field separator
//! survives, a bounded field stays in its bound, no piece is too long.
#![no_main]

use jitsudo_core::log::{escape, escape_bounded, split_line, CUT_MARK, MAX_MESSAGE_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let escaped = escape(data);
    assert!(escaped.chars().all(|c| !c.is_control()));
    assert!(!escaped.contains(';'));
    assert!(!escaped.contains(CUT_MARK));
    let max = 4 + data.first().copied().unwrap_or(0) as usize;
    let (bounded, cut) = escape_bounded(data, max);
    assert!(bounded.len() <= max);
    if cut {
        assert!(escaped.starts_with(bounded.strip_suffix(CUT_MARK).unwrap()));
    } else {
        assert_eq!(bounded, escaped);
    }
    for piece in split_line(&escaped, "alice", MAX_MESSAGE_BYTES) {
        assert!(piece.len() <= MAX_MESSAGE_BYTES);
        assert!(!piece.contains('\n'));
    }
});
