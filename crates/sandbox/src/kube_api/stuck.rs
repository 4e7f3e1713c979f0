//! The fault mode of a workload whose pods never become ready: the two ways a DR start gets stuck
//! in practice. `ImagePullBackOff`: the image cannot be pulled (the DR registry or its credentials
//! are missing); the pod stays `Pending`. `CrashLoopBackOff`: the container starts and exits (a
//! database or secret the application needs is absent); the pod is `Running` but never ready, its
//! last state `terminated` with exit code 1. Selected per environment and workload (`sandbox up --stuck
//! dr/ac-ac-runtime=CrashLoopBackOff`) or by tests through `KubeApiServer::set_stuck`.

use std::fmt;
use std::str::FromStr;

use drscript_base::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Stuck {
    CrashLoopBackOff,
    ImagePullBackOff,
}

impl Stuck {
    pub fn name(self) -> &'static str {
        match self {
            Stuck::CrashLoopBackOff => "CrashLoopBackOff",
            Stuck::ImagePullBackOff => "ImagePullBackOff",
        }
    }
}

impl fmt::Display for Stuck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Stuck {
    type Err = Error;

    fn from_str(s: &str) -> Result<Stuck, Error> {
        match s {
            "CrashLoopBackOff" => Ok(Stuck::CrashLoopBackOff),
            "ImagePullBackOff" => Ok(Stuck::ImagePullBackOff),
            _ => Err(Error::Usage(format!(
                "unknown stuck reason `{s}`: expected \"CrashLoopBackOff\" or \"ImagePullBackOff\""
            ))),
        }
    }
}

/// `ENV/WORKLOAD=REASON`: which workload of which sandbox environment never gets ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckWorkload {
    pub env: String,
    pub workload: String,
    pub reason: Stuck,
}

impl FromStr for StuckWorkload {
    type Err = Error;

    fn from_str(s: &str) -> Result<StuckWorkload, Error> {
        let usage = || {
            Error::Usage(format!("--stuck `{s}`: expected ENV/WORKLOAD=REASON, e.g. dr/ac-ac-runtime=CrashLoopBackOff"))
        };
        let (target, reason) = s.split_once('=').ok_or_else(usage)?;
        let (env, workload) = target.split_once('/').ok_or_else(usage)?;
        if env.is_empty() || workload.is_empty() {
            return Err(usage());
        }
        Ok(StuckWorkload { env: env.to_string(), workload: workload.to_string(), reason: reason.parse()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuck_workloads_parse_and_bad_ones_say_the_form() {
        let s: StuckWorkload = "dr/ac-ac-runtime=ImagePullBackOff".parse().unwrap();
        assert_eq!((s.env.as_str(), s.workload.as_str(), s.reason), ("dr", "ac-ac-runtime", Stuck::ImagePullBackOff));
        assert!("dr/x=Sleepy".parse::<StuckWorkload>().unwrap_err().to_string().contains("CrashLoopBackOff"));
        assert!("ac-ac-runtime".parse::<StuckWorkload>().unwrap_err().to_string().contains("ENV/WORKLOAD=REASON"));
    }
}
