#![no_main]
//! Endpoint URLs and SAS query strings: parsed or refused, never a panic; and every `sig`
//! parameter is masked by the redaction layer.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = drscript_sync::Endpoint::parse(text);
        let sas = drscript_sync::sas::Sas::parse(text);
        let _ = sas.check("source", "fuzz", &[drscript_sync::sas::READ], chrono::Utc::now());
        let redacted = drscript_base::redact::redacted(text).to_ascii_lowercase();
        for separator in ["?sig=", "&sig=", ";sig="] {
            for (at, _) in redacted.match_indices(separator) {
                let rest = &redacted[at + separator.len()..];
                let value_ends = rest.find(|c: char| c == '&' || c.is_whitespace() || "\"'<>".contains(c)).unwrap_or(rest.len());
                assert!(value_ends == 0 || rest.starts_with("***"), "an unmasked signature in {redacted:?}");
            }
        }
    }
});
