//! The sandbox's own zone as the DR model starts, written into the zone file that
//! [`drscript_base::dns_zone`] defines.

use std::path::Path;

use drscript_base::dns_zone::DnsZoneFile;
use drscript_base::error::Result;

/// The sandbox's zone, and the file it lives in (relative to the sandbox folder).
pub const SANDBOX_ZONE: &str = "adeptia.sandbox";
pub const SANDBOX_ZONE_FILE: &str = "dns-zone.json";

/// Creates the sandbox's zone as the DR model starts: `app` (A) at PROD, `db` (CNAME) at the
/// primary database. Returns the zone file and the `[dns]` section of the sandbox's config,
/// whose records carry one target per role (`prod`/`dr`, `primary`/`sync`). An existing file is
/// reset: the sandbox starts from the model's initial state every time.
pub fn create_for_sandbox(dir: &Path) -> Result<(DnsZoneFile, String)> {
    let zone = DnsZoneFile::new(dir.join(SANDBOX_ZONE_FILE));
    let _ = std::fs::remove_file(zone.path());
    zone.create(&[SANDBOX_ZONE])?;
    zone.set(SANDBOX_ZONE, "app", "A", 60, vec!["127.0.1.10".into()])?;
    zone.set(SANDBOX_ZONE, "db", "CNAME", 60, vec![format!("pg-primary.{SANDBOX_ZONE}")])?;
    let config = format!(
        "[dns]\nprovider = \"sandbox\"\nzone_file = \"{SANDBOX_ZONE_FILE}\"\n\n\
         [dns.records.app]\nzone = \"{SANDBOX_ZONE}\"\nname = \"app\"\ntype = \"A\"\nttl = 60\n\
         targets = {{ prod = \"127.0.1.10\", dr = \"127.0.2.10\" }}\n\n\
         [dns.records.db]\nzone = \"{SANDBOX_ZONE}\"\nname = \"db\"\ntype = \"CNAME\"\nttl = 60\n\
         targets = {{ primary = \"pg-primary.{SANDBOX_ZONE}\", sync = \"pg-sync.{SANDBOX_ZONE}\" }}\n"
    );
    Ok((zone, config))
}
