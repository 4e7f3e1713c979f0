#![no_main]
//! The journal reader that `resume` trusts: any bytes are records or a clear error.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let _ = drscript_core::journal::parse(&lines, "fuzz");
});
