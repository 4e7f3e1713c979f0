//! What a script can and cannot reach, and secrets of every kind kept out of every output.

use crate::test::{CONFIG, Test};

#[test]
fn scripts_cannot_read_files_open_sockets_or_start_processes() {
    for call in [
        "open(\"/etc/passwd\")",
        "read_file(\"/etc/passwd\")",
        "File(\"/etc/passwd\")",
        "system(\"id\")",
        "exec(\"id\")",
        "command(\"id\")",
        "spawn(\"id\")",
        "connect(\"127.0.0.1:22\")",
        "http_get(\"http://127.0.0.1/\")",
        "env_var(\"HOME\")",
    ] {
        let name = call.split('(').next().unwrap();
        Test::new().script(&format!("let x = {call};\n")).status(2).stderr_has(name).run();
    }
}

#[test]
fn secrets_of_every_kind_stay_out_of_terminal_logs_journal_and_report() {
    let secrets = [
        ("GW_TOKEN", "gw-Bearer-T0ken-7f3a9c"),
        ("APP_SAS", "sv=2022-11-02&sp=rl&se=2099-01-01&sig=S4sSignatureValue%3D"),
        ("HOOK_URL", "http://127.0.0.1:9/webhook/Hook5ecretPath"),
        ("AZ_SECRET", "Az-Client-Secret-91b2"),
        ("DB_PW", "Db-Passw0rd-55e1"),
    ];
    let config = format!(
        "{CONFIG}\n[environments.prod.gateway_auth]\ntype = \"bearer\"\ntoken_env = \"GW_TOKEN\"\n\n[environments.prod.shares]\napp = {{ url = \"http://127.0.0.1:9/acct/share\", sas_env = \"APP_SAS\" }}\n\n[azure]\nauth = \"service_principal\"\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret_env = \"AZ_SECRET\"\n\n[databases.primary]\nurl = \"postgres://app@127.0.0.1:9/db\"\npassword_env = \"DB_PW\"\ntimeout_secs = 2\n\n[[notify]]\nname = \"ops\"\nurl_env = \"HOOK_URL\"\n"
    );
    let script = r#"
        let prod = env("prod");
        step("tell", || notify("starting"));
        step("reach the share", || share_reachable(prod.shares.app));
        step("days left", || sas_days_left(prod.shares.app));
        step("pause", || pause_scheduler(prod));
    "#;
    let mut test =
        Test::new().config(&config).script(script).args(&["--log-file", "run.log", "-v", "script.rhai"]).status(1);
    for (k, v) in secrets {
        test = test.env(k, v);
    }
    let ran = test.run();
    let written = ran.all_files();
    for (name, value) in secrets {
        let needle = value.rsplit(['=', '/']).next().unwrap();
        assert!(!ran.stderr.contains(needle), "stderr leaks {name}:\n{}", ran.stderr);
        assert!(!written.contains(needle), "a file drscript wrote leaks {name}");
    }
    assert!(ran.stderr.contains("pause"), "{}", ran.stderr);
}
