//! Host config text: any input is a config or an error naming file and line.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = jitsudo_core::config::parse(std::path::Path::new("/etc/jitsudo/jitsudo.toml"), text) {
            assert!(e.0.starts_with("/etc/jitsudo/jitsudo.toml"), "{e}");
        }
    }
});
