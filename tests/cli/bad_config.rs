//! Bad configs: each names the key (and the line where there is one), exits 2, runs nothing.

use crate::test::{CONFIG, Test};

fn rejects(config: &str, expected: &[&str]) {
    let mut test = Test::new().config(config).script("step(\"s\", || info(\"ran\"));\n").status(2).stderr_lacks("ran");
    for e in expected {
        test = test.stderr_has(e);
    }
    let ran = test.run();
    assert!(ran.runs().is_empty());
}

#[test]
fn no_environments() {
    rejects("[settings]\n", &["missing field `environments`"]);
}

#[test]
fn empty_environments() {
    rejects("[environments]\n", &["environments: at least one environment is required"]);
}

#[test]
fn missing_namespace() {
    rejects(
        &CONFIG.replace(
            "namespace = \"adeptia\"\nrelease = \"ac\"\ngateway = \"https://prod",
            "release = \"ac\"\ngateway = \"https://prod",
        ),
        &["missing field `namespace`"],
    );
}

#[test]
fn malformed_gateway_url() {
    rejects(
        &CONFIG.replace("https://prod.example.com", "prod example com"),
        &["environments.prod.gateway", "is not a URL", "drscript.toml:6:"],
    );
}

#[test]
fn gateway_url_with_another_scheme() {
    rejects(&CONFIG.replace("https://prod.example.com", "ftp://prod.example.com"), &["only http and https"]);
}

#[test]
fn replicas_of_the_wrong_type() {
    rejects(&CONFIG.replace("runtime = 3", "runtime = -3"), &["drscript.toml:14:", "runtime"]);
}

#[test]
fn secret_given_both_ways() {
    rejects(
        &format!(
            "{CONFIG}[environments.prod.gateway_auth]\ntype = \"bearer\"\ntoken_env = \"A\"\ntoken_file = \"b\"\n"
        ),
        &["environments.prod.gateway_auth", "set only one of `token_env` and `token_file`"],
    );
}

#[test]
fn auth_without_its_secret() {
    rejects(
        &format!("{CONFIG}[environments.prod.gateway_auth]\ntype = \"basic\"\nusername = \"u\"\n"),
        &["missing `password_env` or `password_file`"],
    );
}

#[test]
fn unknown_auth_type() {
    rejects(
        &format!("{CONFIG}[environments.prod.gateway_auth]\ntype = \"kerberos\"\n"),
        &["unknown variant `kerberos`"],
    );
}

#[test]
fn share_with_path_and_url() {
    rejects(
        &format!(
            "{CONFIG}[environments.prod.shares]\napp = {{ path = \"/a\", url = \"https://a.file.core.windows.net/s\" }}\n"
        ),
        &["environments.prod.shares.app", "exactly one of `path` or `url`"],
    );
}

#[test]
fn share_url_carrying_a_sas() {
    rejects(
        &format!(
            "{CONFIG}[environments.prod.shares]\napp = {{ url = \"https://a.file.core.windows.net/s?sv=2021-06-08&sig=AbC%3D\" }}\n"
        ),
        &["SAS is a secret", "sas_env"],
    );
}

#[test]
fn unknown_storage_account_reference() {
    rejects(
        &CONFIG.replace(
            "namespace = \"adeptia\"\nrelease = \"ac\"\ngateway = \"https://dr",
            "storage_account = \"drsa\"\nnamespace = \"adeptia\"\nrelease = \"ac\"\ngateway = \"https://dr",
        ),
        &["no [storage.drsa] section"],
    );
}

#[test]
fn unknown_dns_provider() {
    rejects(&format!("{CONFIG}[dns]\nprovider = \"route53\"\n"), &["dns.provider", "must be one of"]);
}

#[test]
fn unsupported_record_type() {
    rejects(
        &format!(
            "{CONFIG}[dns]\nprovider = \"sandbox\"\nzone_file = \"zone.json\"\n[dns.records.app]\nzone = \"example.com\"\nname = \"connect\"\ntype = \"MX\"\ntargets = {{ prod = \"a\", dr = \"b\" }}\n"
        ),
        &["dns.records.app.type", "`MX` is not supported"],
    );
}

#[test]
fn database_url_with_a_wrong_scheme() {
    rejects(
        &format!("{CONFIG}[databases.primary]\nurl = \"oracle://db:1521/x\"\n"),
        &["databases.primary.url", "must start with postgres://"],
    );
}

#[test]
fn database_url_with_a_password() {
    rejects(
        &format!("{CONFIG}[databases.primary]\nurl = \"postgres://adeptia:Hunter2Secret@db:5432/x\"\n"),
        &["password is a secret"],
    );
}

#[test]
fn plain_text_secret_in_a_nested_table() {
    let ran = Test::new()
        .config(&format!("{CONFIG}[azure]\nauth = \"service_principal\"\nclient_secret = \"Pl41nT3xtSecret\"\n"))
        .script("info(\"x\");\n")
        .status(2)
        .stderr_has("azure.client_secret")
        .stderr_has("client_secret_env")
        .stderr_lacks("Pl41nT3xtSecret")
        .run();
    drop(ran);
}

#[test]
fn webhook_without_a_url() {
    rejects(&format!("{CONFIG}[[notify]]\nname = \"ops\"\n"), &["notify.0", "missing `url_env` or `url_file`"]);
}

#[test]
fn not_toml_at_all() {
    rejects("this is = = not toml\n", &["drscript.toml:1:"]);
}

#[test]
fn missing_secret_variable_is_named_without_a_value() {
    let config = format!("{CONFIG}[[notify]]\nname = \"ops\"\nurl_env = \"OPS_WEBHOOK_UNSET\"\n");
    Test::new()
        .config(&config)
        .script("step(\"s\", || notify(\"x\"));\n")
        .status(2)
        .stderr_has("environment variable OPS_WEBHOOK_UNSET is not set")
        .run();
}
