//! The on-disk grant cache: corrupt bytes are an error, never a panic.
#![no_main]

use jitsudo_core::store::UserCache;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cache) = UserCache::from_bytes(data) {
        let again = UserCache::from_bytes(&cache.to_bytes()).expect("round trip");
        assert_eq!(again.entries, cache.entries);
    }
});
