//! Starts the ARM emulator and a harness whose config points at it with a static token.
use drscript_core::exec::Mode;
use drscript_sandbox::arm::{self, AccountSeed, ArmHandle, ArmOptions, ZoneSeed};

use super::harness::Harness;

pub const SUB: &str = "00000000-0000-0000-0000-0000000000aa";
pub const RG: &str = "rg-adeptia";

pub fn token() -> String {
    format!("tok-{:032x}", rand::random::<u128>())
}

pub fn account(name: &str) -> AccountSeed {
    AccountSeed::new(SUB, RG, name, "eastus", "westus")
}

pub fn zone(zone: &str, private: bool) -> ZoneSeed {
    ZoneSeed {
        subscription: SUB.into(),
        resource_group: RG.into(),
        zone: zone.into(),
        private,
        records: vec![("app".into(), "A".into(), 300, vec!["10.0.0.1".into()])],
        aliases: Vec::new(),
    }
}

/// Emulator with `options` (token filled in) and a harness whose config has `[azure]` pointing
/// at it plus `toml`; the config file's token is `token`, which may differ from the emulator's.
pub fn start(
    mut options: ArmOptions,
    toml: &str,
    config_token: Option<&str>,
    mode: Mode,
) -> (Harness, ArmHandle, String) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let token = token();
    options.token = token.clone();
    let handle = rt.block_on(arm::start(options)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let azure = format!(
        "[azure]\nauth = \"static_token\"\nresource_manager = \"{}\"\ntoken_file = \"arm.token\"\n{toml}",
        handle.url
    );
    let config_token = config_token.unwrap_or(&token).to_string();
    let h = Harness::in_dir(rt, dir, &azure, &[("arm.token", &config_token)], mode);
    (h, handle, token)
}
