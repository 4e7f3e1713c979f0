//! Secrets never appear in any output: terminal, logs, journal, report, error messages.

use crate::test::Test;

#[test]
fn sas_signatures_and_tokens_are_masked_everywhere() {
    let sig = "VxSecretSig0123456789abcdef%3D";
    let token = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.bWFj";
    let script = format!(
        "step(\"leak\", || {{\n  info(\"copy https://a.file.core.windows.net/pvc/web?sv=2021&sig={sig}&se=2030\");\n  warn(\"Authorization: Bearer {token}\");\n  fail(\"sync failed for ?sp=rl&sig={sig}\");\n}});\n"
    );
    let ran = Test::new()
        .script(&script)
        .args(&["--log-file", "run.log", "script.rhai"])
        .status(1)
        .stderr_has("sig=***")
        .run();
    for secret in [sig, token] {
        assert!(!ran.stderr.contains(secret), "stderr leaks {secret}");
        let files = ran.all_files();
        // The script itself holds the values; every file drscript wrote must not.
        let written = files.replace(&script, "");
        assert!(!written.contains(secret), "a written file leaks {secret}");
    }
}
