use std::path::Path;

use crate::test::{CONFIG, Test};

#[test]
fn check_passes_good_scripts_and_fails_bad_ones_without_config() {
    Test::new()
        .file("good.rhai", "step(\"x\", || 1);\n")
        .file("bad.rhai", "step(\"x\", || slep(1));\n")
        .args(&["check", "good.rhai", "bad.rhai"])
        .status(2)
        .stdout_has("ok  good.rhai")
        .stderr_has("bad.rhai:1:14")
        .stderr_has("did you mean")
        .run();
}

#[test]
fn check_validates_a_config_without_secrets_or_network() {
    let config = format!(
        "{CONFIG}[environments.prod.gateway_auth]\ntype = \"basic\"\nusername = \"u\"\npassword_env = \"NOT_SET_ANYWHERE\"\n"
    );
    Test::new()
        .config(&config)
        .args(&["check", "--config", "drscript.toml"])
        .stdout_has("ok  drscript.toml (2 environment(s): dr, prod)")
        .run();
}

#[test]
fn check_rejects_a_plain_text_secret_with_a_pointer_and_without_the_value() {
    let config = format!(
        "{CONFIG}[environments.prod.gateway_auth]\ntype = \"basic\"\nusername = \"u\"\npassword = \"Sup3rSecretValue\"\n"
    );
    Test::new()
        .config(&config)
        .args(&["check", "--config", "drscript.toml"])
        .status(2)
        .stderr_has("password_env")
        .stderr_lacks("Sup3rSecretValue")
        .run();
}

/// Every shipped script compiles and lints.
#[test]
fn every_shipped_script_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut scripts = Vec::new();
    for dir in ["runbooks", "stdlib", "examples"] {
        collect(&root.join(dir), &mut scripts);
    }
    assert!(!scripts.is_empty());
    let mut args = vec!["check".to_string()];
    args.extend(scripts.iter().map(|p| p.display().to_string()));
    let output = std::process::Command::new(&*crate::test::BIN).args(&args).output().unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The shipped switches keep the document's order: no warning about their steps.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("warning:"), "{stdout}");
}

/// A customer's copy of failover.rhai with the scheduler's pause removed and the copy moved
/// before the quiesce: `check` warns about each, pointing at the call, and still accepts the
/// script (a customer may have a reason); the run says the same at its start.
#[test]
fn check_warns_when_an_edit_breaks_the_documents_order() {
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/failover.rhai")).unwrap();
    let copy = "ac::together(\"Copy state {source} → {target}\", [";
    let edited = shipped.lines().filter(|l| !l.contains("ac::pause(")).collect::<Vec<_>>().join("\n").replacen(
        "ac::failover([",
        &format!("ac::failover([\n    {copy}ac::copy_folders(\"early copy\")]),"),
        1,
    );
    assert!(edited.contains("early copy"), "{edited}");
    Test::new()
        .file("failover.rhai", &edited)
        .args(&["check", "failover.rhai"])
        .stdout_has("warning: a copy starts before the runtime of the source scaled down (document step 1)")
        .stdout_has("warning: no step has the scheduler of the source paused (document step 2)")
        .stdout_has("--> failover.rhai:")
        .stdout_has("ok  failover.rhai")
        .stdout_lacks("no update_dns step")
        .run();
    let world = drscript_test_support::world::World::start(&[]);
    std::fs::write(world.path().join("failover.rhai"), &edited).unwrap();
    let out = world.drscript(&["plan", "failover.rhai"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("this switch's steps: no step has the scheduler of prod paused (document step 2)"), "{text}");
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rhai") {
            out.push(path);
        }
    }
}
