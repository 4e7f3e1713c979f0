//! What a SAS token grants, read from its query string, so that an expired token or a missing
//! permission is reported before the first request instead of as a bare 403 halfway through.

use chrono::{DateTime, Utc};

use drscript_base::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct Sas {
    /// `se`: expiry.
    pub expiry: Option<DateTime<Utc>>,
    /// `st`: start.
    pub start: Option<DateTime<Utc>>,
    /// `sp`: permission letters.
    pub permissions: Option<String>,
}

/// A permission a sync needs, with the letter that grants it.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    pub letter: char,
    pub name: &'static str,
}

pub const READ: Need = Need { letter: 'r', name: "read" };
pub const LIST: Need = Need { letter: 'l', name: "list" };
pub const WRITE: Need = Need { letter: 'w', name: "write" };
pub const CREATE: Need = Need { letter: 'c', name: "create" };
pub const DELETE: Need = Need { letter: 'd', name: "delete" };

fn parse_time(v: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v).map(|d| d.with_timezone(&Utc)).ok().or_else(|| {
        chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| d.and_utc())
    })
}

impl Sas {
    /// Reads `se`, `st` and `sp` from a query string (with or without the leading `?`).
    pub fn parse(query: &str) -> Sas {
        let mut sas = Sas::default();
        for (k, v) in url::form_urlencoded::parse(query.trim_start_matches('?').as_bytes()) {
            match k.as_ref() {
                "se" => sas.expiry = parse_time(&v),
                "st" => sas.start = parse_time(&v),
                "sp" => sas.permissions = Some(v.into_owned()),
                _ => {}
            }
        }
        sas
    }

    /// Fails when the token is expired, not yet valid, or lacks one of `needs`.
    pub fn check(&self, role: &str, location: &str, needs: &[Need], now: DateTime<Utc>) -> Result<()> {
        if let Some(expiry) = self.expiry
            && expiry <= now
        {
            return Err(Error::Usage(format!(
                "sync: the SAS of the {role} {location} expired at {} ({} ago); issue a new one",
                expiry.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                human(now - expiry)
            )));
        }
        if let Some(start) = self.start
            && start > now + chrono::Duration::minutes(5)
        {
            return Err(Error::Usage(format!(
                "sync: the SAS of the {role} {location} is valid only from {}",
                start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )));
        }
        if let Some(perms) = &self.permissions {
            let missing: Vec<String> = needs
                .iter()
                .filter(|n| !perms.contains(n.letter))
                .map(|n| format!("{} ({})", n.name, n.letter))
                .collect();
            if !missing.is_empty() {
                return Err(Error::Usage(format!(
                    "sync: the SAS of the {role} {location} lacks permission {} (it grants sp={perms})",
                    missing.join(", ")
                )));
            }
        }
        Ok(())
    }
}

fn human(d: chrono::Duration) -> String {
    let s = d.num_seconds();
    if s < 120 {
        format!("{s} s")
    } else if s < 7200 {
        format!("{} min", s / 60)
    } else if s < 172_800 {
        format!("{} h", s / 3600)
    } else {
        format!("{} days", s / 86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_sas_names_its_expiry() {
        let sas = Sas::parse("?sv=2021-06-08&sp=rl&se=2024-03-06T01:18:24Z&sig=abc");
        let err = sas.check("source", "https://a/s", &[READ], Utc::now()).unwrap_err().to_string();
        assert!(err.contains("expired at 2024-03-06T01:18:24Z"), "{err}");
    }

    #[test]
    fn missing_permissions_are_named() {
        let sas = Sas::parse("sp=rl&se=2999-01-01T00:00:00Z");
        let err = sas.check("destination", "x", &[READ, LIST, WRITE, DELETE], Utc::now()).unwrap_err().to_string();
        assert!(err.contains("write (w), delete (d)"), "{err}");
        assert!(sas.check("source", "x", &[READ, LIST], Utc::now()).is_ok());
    }
}
