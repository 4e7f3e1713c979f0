#![no_main]
//! The config parser: any text is either a config or a located error, never a panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = drscript_core::config::Config::parse(std::path::Path::new("fuzz.toml"), text);
    }
});
