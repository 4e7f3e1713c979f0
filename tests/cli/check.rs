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
