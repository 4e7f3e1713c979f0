//! The workload kinds the primitives scale: `deployment` and `statefulset`.

use std::fmt;
use std::str::FromStr;

use drscript_base::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Deployment,
    StatefulSet,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Deployment => "deployment",
            Kind::StatefulSet => "statefulset",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = Error;

    /// Accepts the names and the short names kubectl accepts.
    fn from_str(s: &str) -> Result<Kind, Error> {
        match s.to_ascii_lowercase().as_str() {
            "deployment" | "deployments" | "deploy" => Ok(Kind::Deployment),
            "statefulset" | "statefulsets" | "sts" => Ok(Kind::StatefulSet),
            _ => Err(Error::Usage(format!("unknown workload kind `{s}`: expected \"deployment\" or \"statefulset\""))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_unknown_kind_is_named() {
        assert_eq!("Deployment".parse::<Kind>().unwrap(), Kind::Deployment);
        assert_eq!("sts".parse::<Kind>().unwrap(), Kind::StatefulSet);
        let msg = "daemonset".parse::<Kind>().unwrap_err().to_string();
        assert!(msg.contains("daemonset") && msg.contains("statefulset"), "{msg}");
    }
}
