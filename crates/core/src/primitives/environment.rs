//! `env(name)`: the environments of the config as script values.

use std::sync::Arc;

use rhai::plugin::*;
use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext};

use super::{exec_of, to_rhai};
use crate::config::{Environment, Share};

/// An environment from the config (`env("prod")`); its fields are readable.
#[derive(Debug, Clone)]
pub struct Env(pub Arc<Environment>);

/// A share of an environment (`prod.shares.app`); its credentials stay out of scripts.
#[derive(Debug, Clone)]
pub struct ShareRef {
    pub env: String,
    pub name: String,
    pub share: Arc<Share>,
    /// A folder inside the share (`web/repository`), empty for the whole share.
    pub path: String,
}

impl ShareRef {
    pub fn describe(&self) -> String {
        let path = if self.path.is_empty() { String::new() } else { format!("/{}", self.path) };
        format!("{}.shares.{}{path} ({}{path})", self.env, self.name, self.share.location().trim_end_matches('/'))
    }
}

#[export_module]
pub mod environment_api {
    use super::*;

    /// The environment `name` from the config, e.g. `let prod = env("prod");`.
    /// Fields: `name`, `namespace`, `release`, `kube_context`, `gateway`, `replicas`
    /// (`runtime`, `listener`, `rabbitmq`), `shares`, `storage_account`.
    #[rhai_fn(return_raw)]
    pub fn env(ctx: NativeCallContext, name: &str) -> Result<Env, Box<EvalAltResult>> {
        let exec = exec_of(&ctx);
        let config = exec.config().map_err(to_rhai)?;
        let environment = config.environment(name).map_err(to_rhai)?;
        Ok(Env(Arc::new(environment.clone())))
    }

    /// The names of all environments in the config, in the order the file lists them.
    #[rhai_fn(return_raw)]
    pub fn environments(ctx: NativeCallContext) -> Result<rhai::Array, Box<EvalAltResult>> {
        let exec = exec_of(&ctx);
        let config = exec.config().map_err(to_rhai)?;
        Ok(config.order.iter().map(|k| Dynamic::from(k.clone())).collect())
    }

    /// The DNS record `name` of `[dns.records]`: `#{zone, name, fqdn, type, ttl, targets}`,
    /// e.g. `dns_lookup(dns_record("app").fqdn)`.
    #[rhai_fn(return_raw)]
    pub fn dns_record(ctx: NativeCallContext, name: &str) -> Result<Map, Box<EvalAltResult>> {
        let exec = exec_of(&ctx);
        let config = exec.config().map_err(to_rhai)?;
        let records = config.dns.as_ref().map(|d| &d.records);
        let Some(record) = records.and_then(|r| r.get(name)) else {
            let known = records.map(|r| r.keys().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default();
            return Err(to_rhai(crate::Error::Config {
                message: format!("no [dns.records.{name}] in {} (known: {known})", config.path.display()),
            }));
        };
        let zone = record.zone.trim_end_matches('.');
        let fqdn = if record.name == "@" || record.name.is_empty() {
            zone.to_string()
        } else {
            format!("{}.{zone}", record.name)
        };
        let mut m = Map::new();
        m.insert("zone".into(), zone.to_string().into());
        m.insert("name".into(), record.name.clone().into());
        m.insert("fqdn".into(), fqdn.into());
        m.insert("type".into(), record.record_type.clone().into());
        m.insert("ttl".into(), Dynamic::from(i64::from(record.ttl)));
        let targets: Map = record.targets.iter().map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone()))).collect();
        m.insert("targets".into(), targets.into());
        Ok(m)
    }

    #[rhai_fn(get = "name", pure)]
    pub fn name(e: &mut Env) -> String {
        e.0.name.clone()
    }
    #[rhai_fn(get = "namespace", pure)]
    pub fn namespace(e: &mut Env) -> String {
        e.0.namespace.clone()
    }
    #[rhai_fn(get = "release", pure)]
    pub fn release(e: &mut Env) -> String {
        e.0.release.clone()
    }
    #[rhai_fn(get = "kube_context", pure)]
    pub fn kube_context(e: &mut Env) -> Dynamic {
        e.0.kube_context.clone().map_or(Dynamic::UNIT, Dynamic::from)
    }
    #[rhai_fn(get = "gateway", pure)]
    pub fn gateway(e: &mut Env) -> String {
        e.0.gateway.clone()
    }
    #[rhai_fn(get = "storage_account", pure)]
    pub fn storage_account(e: &mut Env) -> Dynamic {
        e.0.storage_account.clone().map_or(Dynamic::UNIT, Dynamic::from)
    }
    /// The replica counts of `[environments.NAME.replicas]`, by component; a component the
    /// config omits is absent (never a default of 1).
    #[rhai_fn(get = "replicas", pure)]
    pub fn replicas(e: &mut Env) -> Map {
        e.0.replicas.iter().map(|(c, n)| (c.as_str().into(), Dynamic::from(i64::from(*n)))).collect()
    }
    /// The Kubernetes kinds of `[environments.NAME.kinds]`, by component.
    #[rhai_fn(get = "kinds", pure)]
    pub fn kinds(e: &mut Env) -> Map {
        e.0.kinds.iter().map(|(c, k)| (c.as_str().into(), Dynamic::from(k.clone()))).collect()
    }
    /// The URLs of `health_urls` that must answer 2xx before traffic moves here.
    #[rhai_fn(get = "health_urls", pure)]
    pub fn health_urls(e: &mut Env) -> rhai::Array {
        e.0.health_urls.iter().cloned().map(Dynamic::from).collect()
    }
    /// The workload of `component` in `e`: `[environments.NAME.workloads]`, else the pattern
    /// `workload_names` (default `{release}-ac-{component}`, as in `ac-ac-runtime`).
    pub fn workload_of(e: Env, component: &str) -> String {
        e.0.workload_name(component)
    }
    #[rhai_fn(get = "shares", pure)]
    pub fn shares(e: &mut Env) -> Map {
        e.0.shares
            .iter()
            .map(|(name, share)| {
                let value = ShareRef {
                    env: e.0.name.clone(),
                    name: name.clone(),
                    share: Arc::new(share.clone()),
                    path: String::new(),
                };
                (name.as_str().into(), Dynamic::from(value))
            })
            .collect()
    }
    #[rhai_fn(name = "to_string", pure)]
    pub fn env_to_string(e: &mut Env) -> String {
        e.0.name.clone()
    }
    #[rhai_fn(name = "to_debug", pure)]
    pub fn env_to_debug(e: &mut Env) -> String {
        format!("env(\"{}\")", e.0.name)
    }
    #[rhai_fn(name = "==", pure)]
    pub fn env_eq(a: &mut Env, b: Env) -> bool {
        a.0.name == b.0.name
    }
    #[rhai_fn(name = "!=", pure)]
    pub fn env_ne(a: &mut Env, b: Env) -> bool {
        a.0.name != b.0.name
    }

    #[rhai_fn(get = "name", pure)]
    pub fn share_name(s: &mut ShareRef) -> String {
        s.name.clone()
    }
    #[rhai_fn(get = "env", pure)]
    pub fn share_env(s: &mut ShareRef) -> String {
        s.env.clone()
    }
    /// The folder `path` inside a share: `prod.shares.app.sub("web/repository")`.
    #[rhai_fn(pure, return_raw)]
    pub fn sub(s: &mut ShareRef, path: &str) -> Result<ShareRef, Box<EvalAltResult>> {
        let clean = path.trim_matches('/');
        if clean.split('/').any(|part| part == ".." || part == ".") {
            return Err(to_rhai(crate::Error::Usage(format!(
                "sub(\"{path}\"): `.` and `..` are not allowed in share paths"
            ))));
        }
        let mut sub = s.clone();
        sub.path = if sub.path.is_empty() { clean.to_string() } else { format!("{}/{clean}", sub.path) };
        Ok(sub)
    }
    #[rhai_fn(get = "path", pure)]
    pub fn share_path(s: &mut ShareRef) -> String {
        s.path.clone()
    }
    /// The folders of the share that a switch copies (`folders` in its config), `()` when the
    /// config does not list them.
    #[rhai_fn(get = "folders", pure)]
    pub fn share_folders(s: &mut ShareRef) -> Dynamic {
        s.share
            .folders
            .as_ref()
            .map_or(Dynamic::UNIT, |f| Dynamic::from(f.iter().cloned().map(Dynamic::from).collect::<rhai::Array>()))
    }
    #[rhai_fn(get = "location", pure)]
    pub fn share_location(s: &mut ShareRef) -> String {
        s.share.location()
    }
    #[rhai_fn(name = "to_string", pure)]
    pub fn share_to_string(s: &mut ShareRef) -> String {
        s.describe()
    }
    #[rhai_fn(name = "to_debug", pure)]
    pub fn share_to_debug(s: &mut ShareRef) -> String {
        s.describe()
    }
}

pub fn register(engine: &mut rhai::Engine) {
    engine.register_type_with_name::<Env>("Env");
    engine.register_type_with_name::<ShareRef>("Share");
    engine.register_global_module(rhai::exported_module!(environment_api).into());
}
