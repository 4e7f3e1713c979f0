//! The sandbox's DNS zones as data: a JSON file holding zones and their record sets, written by
//! the sandbox and by drscript's `sandbox` DNS provider alike (the format, not the server, is shared).
//!
//! A file rather than a server because the sandbox must survive `drscript sandbox down/up`, be
//! readable by `sandbox status --json`, and be shared by several processes (the sandbox, a run,
//! the REPL). Every update rewrites the file through a temporary file and a rename under an
//! exclusive `flock`, so a reader never sees half a file and two writers never lose an update.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ZoneData {
    #[serde(default)]
    pub zones: BTreeMap<String, Zone>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    #[serde(default)]
    pub records: Vec<ZoneRecord>,
}

/// A record set: every value of one name and type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneRecord {
    /// Relative to the zone; `@` for the apex.
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    pub ttl: u32,
    pub values: Vec<String>,
}

/// A zone file on disk.
#[derive(Debug, Clone)]
pub struct DnsZoneFile {
    path: PathBuf,
}

impl DnsZoneFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DnsZoneFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole content; a missing file is an error (the sandbox is not up).
    pub fn read(&self) -> Result<ZoneData> {
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| Error::io(format!("sandbox DNS zone file {} (is the sandbox up?)", self.path.display()), e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Other(format!("sandbox DNS zone file {} is not valid: {e}", self.path.display())))
    }

    /// The record set `name`/`record_type` of `zone`, if any; an unknown zone is an error.
    pub fn get(&self, zone: &str, name: &str, record_type: &str) -> Result<Option<ZoneRecord>> {
        let data = self.read()?;
        let zone_data = data.zones.get(zone).ok_or_else(|| self.no_zone(zone, &data))?;
        Ok(zone_data
            .records
            .iter()
            .find(|r| r.name == name && r.record_type.eq_ignore_ascii_case(record_type))
            .cloned())
    }

    /// Creates the file with these zones if it does not exist yet (sandbox setup).
    pub fn create(&self, zones: &[&str]) -> Result<()> {
        self.update(|data| {
            for zone in zones {
                data.zones.entry((*zone).to_string()).or_default();
            }
            Ok(())
        })
    }

    /// Replaces the record set `name`/`record_type` in `zone` with `values`.
    pub fn set(&self, zone: &str, name: &str, record_type: &str, ttl: u32, values: Vec<String>) -> Result<()> {
        self.update(|data| {
            let known = data.clone();
            let zone_data = data.zones.get_mut(zone).ok_or_else(|| self.no_zone(zone, &known))?;
            zone_data.records.retain(|r| !(r.name == name && r.record_type.eq_ignore_ascii_case(record_type)));
            zone_data.records.push(ZoneRecord {
                name: name.to_string(),
                record_type: record_type.to_ascii_uppercase(),
                ttl,
                values,
            });
            zone_data.records.sort_by(|a, b| (&a.name, &a.record_type).cmp(&(&b.name, &b.record_type)));
            Ok(())
        })
    }

    /// Read, change and atomically replace the file under an exclusive lock.
    fn update(&self, change: impl FnOnce(&mut ZoneData) -> Result<()>) -> Result<()> {
        let _lock = self.lock()?;
        let mut data = match std::fs::metadata(&self.path) {
            Ok(_) => self.read()?,
            Err(_) => ZoneData::default(),
        };
        change(&mut data)?;
        let tmp = self.path.with_extension(format!("tmp.{}", std::process::id()));
        let text = serde_json::to_string_pretty(&data).map_err(|e| Error::Other(e.to_string()))?;
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| Error::io(format!("writing sandbox DNS zone file {}", self.path.display()), e))
    }

    fn lock(&self) -> Result<File> {
        let lock_path = self.path.with_extension("lock");
        if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(format!("locking {}", lock_path.display()), e))?;
        crate::sys::lock_exclusive(&file).map_err(|e| Error::io(format!("locking {}", lock_path.display()), e))?;
        Ok(file)
    }

    fn no_zone(&self, zone: &str, data: &ZoneData) -> Error {
        Error::Other(format!(
            "zone `{zone}` does not exist in the sandbox DNS ({}; zones: {})",
            self.path.display(),
            data.zones.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_the_record_set_and_get_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let zone = DnsZoneFile::new(dir.path().join("dns.json"));
        zone.create(&["example.com"]).unwrap();
        zone.set("example.com", "app", "A", 60, vec!["10.0.0.1".into()]).unwrap();
        zone.set("example.com", "app", "a", 30, vec!["10.0.0.2".into()]).unwrap();
        let r = zone.get("example.com", "app", "A").unwrap().unwrap();
        assert_eq!((r.ttl, r.values), (30, vec!["10.0.0.2".to_string()]));
        assert_eq!(zone.read().unwrap().zones["example.com"].records.len(), 1);
    }

    #[test]
    fn unknown_zone_is_an_error_naming_the_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let zone = DnsZoneFile::new(dir.path().join("dns.json"));
        zone.create(&["example.com"]).unwrap();
        let e = zone.set("nope.org", "app", "A", 60, vec![]).unwrap_err().to_string();
        assert!(e.contains("`nope.org` does not exist") && e.contains("example.com"), "{e}");
    }
}
