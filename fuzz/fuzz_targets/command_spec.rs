//! Command specs: parsing never panics, and what parses prints back to itself.
#![no_main]

use jitsudo_core::matcher::CommandSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(spec) = CommandSpec::parse(text) {
            let again = CommandSpec::parse(&spec.to_string()).expect("canonical form parses");
            assert_eq!(again, spec);
        }
    }
});
