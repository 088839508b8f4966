//! Any string offered as a grant token: verification must fail cleanly, never panic.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use jitsudo_core::config::TrustedKey;
use jitsudo_core::grant::{self, keys::SecretKey};
use libfuzzer_sys::fuzz_target;

fn trusted() -> &'static Vec<TrustedKey> {
    static KEYS: OnceLock<Vec<TrustedKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key = SecretKey::generate("k1").expect("key");
        vec![TrustedKey { id: "k1".into(), key: key.public.clone() }]
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        // Also try it with the v4.public prefix so the fuzzer reaches the decoder.
        for candidate in [text.to_string(), format!("v4.public.{text}")] {
            if let Ok(g) = grant::verify(&candidate, trusted(), Duration::from_secs(43200)) {
                panic!("forged token verified: {:?}", g.claims);
            }
        }
    }
});
