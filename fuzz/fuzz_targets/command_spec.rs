//! Command specs: parsing never panics, and what parses prints back to itself.
//!
//! Every input is parsed (invalid UTF-8 turned into U+FFFD, so non-ASCII text is what
//! most inputs become), and also as the pin of `sha256:<pin> /bin/x`, cut or padded to
//! the 64 bytes a pin must have: a random input almost never spells `sha256:` and 64
//! bytes by itself, and that is where a multi-byte character once made the parser panic.
#![no_main]

use jitsudo_core::matcher::CommandSpec;
use libfuzzer_sys::fuzz_target;

fn round_trip(text: &str) {
    if let Ok(spec) = CommandSpec::parse(text) {
        let again = CommandSpec::parse(&spec.to_string()).expect("canonical form parses");
        assert_eq!(again, spec);
    }
}

/// The first characters of `text` that fit in 64 bytes, padded with '0' to 64 bytes.
fn pin_shaped(text: &str) -> String {
    let mut pin = String::new();
    for c in text.chars() {
        if pin.len() + c.len_utf8() > 64 {
            break;
        }
        pin.push(c);
    }
    while pin.len() < 64 {
        pin.push('0');
    }
    pin
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    round_trip(&text);
    round_trip(&format!("sha256:{} /bin/x", pin_shaped(&text)));
    round_trip(&format!("sha256:{text} /bin/x *"));
});
