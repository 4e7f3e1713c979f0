//! Role assignments on the storage accounts, as Azure RBAC keeps them for the data plane: a
//! principal (an object id) holds one of the two built-in roles of Azure Files OAuth over REST on
//! an account, or none.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};

/// The built-in roles that carry the Files "backup semantics" data actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `Storage File Data Privileged Reader`: `readFileBackupSemantics` (read and list).
    Reader,
    /// `Storage File Data Privileged Contributor`: read, write, delete, modify permissions.
    Contributor,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Reader => "Storage File Data Privileged Reader",
            Role::Contributor => "Storage File Data Privileged Contributor",
        }
    }

    /// The role's full name (case-insensitive), or `reader` / `contributor`.
    pub fn parse(text: &str) -> Option<Role> {
        let t = text.trim();
        [Role::Reader, Role::Contributor].into_iter().find(|r| r.name().eq_ignore_ascii_case(t)).or_else(|| {
            match t.to_ascii_lowercase().as_str() {
                "reader" => Some(Role::Reader),
                "contributor" => Some(Role::Contributor),
                _ => None,
            }
        })
    }

    /// Whether the role grants an operation needing the SAS-style `permission` (`r`, `l` read;
    /// `w`, `c`, `d` write).
    pub fn allows(self, permission: char) -> bool {
        match self {
            Role::Contributor => true,
            Role::Reader => matches!(permission, 'r' | 'l'),
        }
    }
}

/// Account → principal object id → role.
#[derive(Debug, Default)]
pub struct Roles {
    map: Mutex<BTreeMap<String, BTreeMap<String, Role>>>,
}

impl Roles {
    pub fn role(&self, account: &str, principal: &str) -> Option<Role> {
        self.map.lock().unwrap().get(account).and_then(|m| m.get(&principal.to_ascii_lowercase())).copied()
    }

    /// Assigns `role` to `principal` on `account`; `None` removes its assignment.
    pub fn set(&self, account: &str, principal: &str, role: Option<Role>) {
        let mut map = self.map.lock().unwrap();
        let principals = map.entry(account.to_string()).or_default();
        match role {
            Some(r) => {
                principals.insert(principal.to_ascii_lowercase(), r);
            }
            None => {
                principals.remove(&principal.to_ascii_lowercase());
            }
        }
    }

    /// `{account: {principal: role name}}`.
    pub fn to_json(&self) -> Value {
        let map = self.map.lock().unwrap();
        Value::Object(
            map.iter()
                .map(|(account, principals)| {
                    let p: serde_json::Map<String, Value> =
                        principals.iter().map(|(oid, r)| (oid.clone(), json!(r.name()))).collect();
                    (account.clone(), Value::Object(p))
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_reads_and_an_assignment_can_be_changed_and_removed() {
        let roles = Roles::default();
        roles.set("prod", "ABC", Some(Role::Reader));
        assert_eq!(roles.role("prod", "abc"), Some(Role::Reader));
        assert!(Role::Reader.allows('r') && Role::Reader.allows('l') && !Role::Reader.allows('w'));
        roles.set("prod", "abc", Some(Role::Contributor));
        assert!(roles.role("prod", "abc").unwrap().allows('d'));
        roles.set("prod", "abc", None);
        assert_eq!(roles.role("prod", "abc"), None);
        assert_eq!(Role::parse("storage file data privileged reader"), Some(Role::Reader));
        assert_eq!(Role::parse("owner"), None);
    }
}
