//! Where is service? The state model behind `drscript status`, `drscript runs`, the
//! `site_state`/`situation` primitives and the interlocks of every switch.
//!
//! Reading is separate from judging: [`facts`] reads one environment (never failing: an
//! unreachable part is a fact with its reason), [`verdict`] judges all of them, [`decision`]
//! decides what a switch may do. Judging and deciding are pure functions, tested case by case.

pub mod decision;
pub mod facts;
pub mod history;
pub mod next;
pub mod render;
pub mod verdict;

pub use decision::{Decision, Intent, decide};
pub use facts::{Budget, SiteState};
pub use history::RunSummary;
pub use verdict::{DnsFacts, Situation, Verdict, judge};

use crate::config::Config;
use crate::dns::record::{RecordType, normalize};

/// The DNS record whose target says which environment serves.
pub const APP_RECORD: &str = "app";

/// Reads `names` (every environment of the config when empty) and the application record at the
/// same time, and judges them against `history` (the state directory's runs, newest first, see
/// [`history::runs`]), leaving out `current_run`.
pub async fn read(
    config: &Config,
    names: &[String],
    budget: Budget,
    history: &[RunSummary],
    current_run: Option<&str>,
) -> crate::Result<Situation> {
    let names: Vec<String> = if names.is_empty() {
        // The primary first, then the standby, then the file's order: the order people think in.
        let mut all = config.order.clone();
        all.sort_by_key(|n| (n != config.primary(), Some(n.as_str()) != config.standby()));
        all
    } else {
        names.to_vec()
    };
    let mut envs = Vec::new();
    for name in &names {
        envs.push(config.environment(name)?);
    }
    let reads = envs.iter().map(|env| facts::read(config, env, budget));
    let (states, dns) = tokio::join!(futures::future::join_all(reads), read_dns(config, APP_RECORD, budget));
    Ok(judge(states, dns, history, current_run))
}

/// The record `record` of `[dns.records]` as the provider holds it, and the role (environment)
/// whose target that is. `None` when the config has no such record.
pub async fn read_dns(config: &Config, record: &str, budget: Budget) -> Option<DnsFacts> {
    let spec = config.dns.as_ref()?.records.get(record)?;
    let zone = spec.zone.trim_end_matches('.').to_string();
    let fqdn = if spec.name == "@" || spec.name.is_empty() { zone.clone() } else { format!("{}.{zone}", spec.name) };
    let mut facts = DnsFacts {
        record: record.to_string(),
        fqdn: fqdn.clone(),
        values: Vec::new(),
        points_at: None,
        error: None,
        resolvers: Vec::new(),
    };
    let resolvers = &config.dns.as_ref()?.resolvers;
    // The authority, then what the resolvers say against it.
    let read = async {
        let provider = crate::dns::Provider::from_config(config)?;
        let record_type = RecordType::parse(&spec.record_type)?;
        let state = provider.read("status", &zone, &spec.name, record_type).await?;
        let answers = match state.as_ref().and_then(|s| s.values.first()) {
            Some(value) if !resolvers.is_empty() => {
                crate::dns::resolvers::ask_all(resolvers, &fqdn, record_type, value).await?
            }
            _ => Vec::new(),
        };
        Ok::<_, drscript_base::error::Error>((state, answers))
    };
    match tokio::time::timeout(budget.0, read).await {
        Ok(Ok((state, answers))) => {
            facts.resolvers = answers;
            facts.values = state.map(|s| s.values).unwrap_or_default();
            let held: Vec<String> = facts.values.iter().map(|v| normalize(v)).collect();
            facts.points_at =
                spec.targets.iter().find(|(_, target)| held.contains(&normalize(target))).map(|(role, _)| role.clone());
        }
        Ok(Err(e)) => facts.error = Some(drscript_base::redact::redacted(e.to_string())),
        Err(_) => facts.error = Some(format!("no answer within {:.0}s (timed out)", budget.0.as_secs_f64())),
    }
    Some(facts)
}
