#![no_main]
//! Endpoint URLs and SAS query strings: parsed or refused, never a panic, and the signature never
//! survives redaction.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = drscript::sync::Endpoint::parse(text);
        let sas = drscript::sync::sas::Sas::parse(text);
        let _ = sas.check("source", "fuzz", &[drscript::sync::sas::READ], chrono::Utc::now());
        let redacted = drscript::redact::redacted(text);
        assert!(!redacted.contains("sig=") || redacted.contains("sig=***") || !text.contains("sig="));
    }
});
