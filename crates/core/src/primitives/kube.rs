//! `scale`, `replicas`, `workload`: the Kubernetes primitives as scripts see them. Arguments are
//! checked here (kind, replica count, options), the action is described to the run's `Exec`,
//! and the work is done by [`crate::kube`].

use std::sync::Arc;
use std::time::Duration;

use rhai::plugin::*;
use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext};

use super::environment::Env;
use super::{exec_of, to_rhai};
use crate::config::Environment;
use crate::exec::{Exec, Mode, Outcome};
use crate::kube::{Cluster, Kind, ScaleOptions, check_replicas, describe_target};
use drscript_base::error::{Error, Result};

type RhaiResult<T = Dynamic> = std::result::Result<T, Box<EvalAltResult>>;

#[export_module]
pub mod kube_api {
    /// Scales a workload and waits until the change is real: for 0, until no pod of it is left
    /// (terminating ones included); for N, until N replicas are ready. `env` is an environment
    /// (`env("prod")`) or its name; `kind` is `"deployment"` or `"statefulset"`. Already at
    /// `replicas`: nothing is written and the action is reported unchanged. Returns
    /// `#{target, from, to, changed, ready, duration_ms}`.
    ///
    /// ```rhai
    /// scale(prod, "deployment", "ac-ac-runtime", 0);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn scale(ctx: NativeCallContext, env: Dynamic, kind: &str, name: &str, replicas: Dynamic) -> RhaiResult {
        super::scale(&exec_of(&ctx), env, kind, name, replicas, &Map::new()).map_err(to_rhai)
    }

    /// `scale` with options: `wait` (default true), `timeout` (seconds, default 300),
    /// `current` (precondition like `kubectl scale --current-replicas`: fails, changing
    /// nothing, when the workload does not have that many replicas now).
    ///
    /// ```rhai
    /// scale(dr, "statefulset", "ac-ac-rabbitmq", 1, #{timeout: 600, current: 0});
    /// ```
    #[rhai_fn(name = "scale", return_raw)]
    pub fn scale_with(
        ctx: NativeCallContext,
        env: Dynamic,
        kind: &str,
        name: &str,
        replicas: Dynamic,
        options: Map,
    ) -> RhaiResult {
        super::scale(&exec_of(&ctx), env, kind, name, replicas, &options).map_err(to_rhai)
    }

    /// The replica count a workload is set to (`spec.replicas`). In a plan: 0.
    #[rhai_fn(return_raw)]
    pub fn replicas(ctx: NativeCallContext, env: Dynamic, kind: &str, name: &str) -> RhaiResult<i64> {
        super::replicas(&exec_of(&ctx), env, kind, name).map_err(to_rhai)
    }

    /// A workload's state: `#{kind, name, namespace, replicas, ready, available, images,
    /// versions, version, env, env_source}` — `versions` are the images' tags or digests without
    /// their registry (compare these across regions), `version` the first of them, `env` the
    /// containers' environment variables as the pods see them (e.g. `QUARTZ_STATUS_ONBOOTUP`,
    /// followed through `valueFrom` and `envFrom` ConfigMaps and Secrets), `env_source` where
    /// each one that is not a literal came from (never print a value whose source is a secret).
    /// In a plan: zeros and empties, so
    /// read variables with `w.env.get("NAME")` (`()` when absent) rather than `w.env.NAME`.
    ///
    /// ```rhai
    /// let event = workload(dr, "deployment", "ac-ac-event");
    /// if event.env.get("QUARTZ_STATUS_ONBOOTUP") != "pause" { warn("DR scheduler starts on boot") }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn workload(ctx: NativeCallContext, env: Dynamic, kind: &str, name: &str) -> RhaiResult<Map> {
        super::workload(&exec_of(&ctx), env, kind, name).map_err(to_rhai)
    }
}

/// The environment named by an `Env` value or a string.
pub fn environment_arg(exec: &Exec, env: &Dynamic) -> Result<Arc<Environment>> {
    if let Some(e) = env.clone().try_cast::<Env>() {
        return Ok(e.0);
    }
    if env.is_string() {
        let config = exec.config()?;
        return Ok(Arc::new(config.environment(&env.to_string())?.clone()));
    }
    Err(Error::Usage(format!("expected an environment (env(\"prod\")) or its name, got {} `{env}`", env.type_name())))
}

fn replicas_arg(value: &Dynamic) -> Result<i32> {
    match value.as_int() {
        Ok(n) => check_replicas(n),
        Err(type_name) => Err(Error::Usage(format!("replicas must be an integer, got {type_name} `{value}`"))),
    }
}

fn seconds(key: &str, value: &Dynamic) -> Result<Duration> {
    let secs = value
        .as_int()
        .map(|i| i as f64)
        .or_else(|_| value.as_float())
        .map_err(|t| Error::Usage(format!("scale option `{key}` must be a number of seconds, got {t}")))?;
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(Error::Usage(format!("scale option `{key}` must be more than 0 seconds, got {secs}")));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn options(map: &Map) -> Result<ScaleOptions> {
    let mut opts = ScaleOptions::default();
    for (key, value) in map {
        match key.as_str() {
            "wait" => {
                opts.wait = value
                    .as_bool()
                    .map_err(|t| Error::Usage(format!("scale option `wait` must be true or false, got {t}")))?;
            }
            "timeout" => opts.timeout = seconds("timeout", value)?,
            "current" => opts.current = Some(replicas_arg(value)?),
            "raise_hpa" => {
                opts.raise_hpa = value
                    .as_bool()
                    .map_err(|t| Error::Usage(format!("scale option `raise_hpa` must be true or false, got {t}")))?;
            }
            other => {
                return Err(Error::Usage(format!(
                    "unknown scale option `{other}` (known: wait, timeout, current, raise_hpa)"
                )));
            }
        }
    }
    Ok(opts)
}

fn report_map(report: &impl serde::Serialize) -> Dynamic {
    rhai::serde::to_dynamic(report).unwrap_or(Dynamic::UNIT)
}

fn scale(exec: &Exec, env: Dynamic, kind: &str, name: &str, replicas: Dynamic, options_map: &Map) -> Result<Dynamic> {
    let env = environment_arg(exec, &env)?;
    let kind: Kind = kind.parse()?;
    let replicas = replicas_arg(&replicas)?;
    let opts = options(options_map)?;
    let target = describe_target(&env, kind, name);
    let mut detail = format!("to {replicas} replica{}", if replicas == 1 { "" } else { "s" });
    if let Some(c) = opts.current {
        detail.push_str(&format!(" (if now {c})"));
    }
    if !opts.wait {
        detail.push_str(" without waiting");
    }
    if exec.mode() == Mode::DryRun {
        // A dry run reads for real: say where the workload is now, and fail like the live run
        // would on a missing workload or bad credentials.
        let now = replicas_now(exec, &env, kind, name, &target)?;
        detail = if now == i64::from(replicas) {
            format!("already at {replicas} (unchanged)")
        } else {
            format!("from {now} {detail}")
        };
    }
    let described = || {
        let mut m = Map::new();
        m.insert("target".into(), target.clone().into());
        m.insert("to".into(), Dynamic::from(i64::from(replicas)));
        m.insert("changed".into(), Dynamic::FALSE);
        m.insert("planned".into(), Dynamic::TRUE);
        Dynamic::from(m)
    };
    exec.picture(|p| {
        p.replicas.insert((env.name.clone(), name.to_string()), replicas);
    });
    exec.change("scale", &target, &detail, described, || {
        let report = exec.block_on(async {
            let cluster = Cluster::connect(&env).await?;
            crate::kube::scale(&cluster, kind, name, replicas, &opts).await
        })?;
        let outcome = if report.changed { Outcome::Changed } else { Outcome::Unchanged };
        // Wait times are RTO evidence: the report can show how long each scale took.
        exec.metric("scale", serde_json::to_value(&report).unwrap_or_default())?;
        Ok((report_map(&report), outcome))
    })
}

fn replicas(exec: &Exec, env: Dynamic, kind: &str, name: &str) -> Result<i64> {
    let env = environment_arg(exec, &env)?;
    let kind: Kind = kind.parse()?;
    let target = describe_target(&env, kind, name);
    replicas_now(exec, &env, kind, name, &target)
}

fn replicas_now(exec: &Exec, env: &Environment, kind: Kind, name: &str, target: &str) -> Result<i64> {
    exec.query(
        "replicas",
        target,
        || 0,
        || {
            exec.block_on(async {
                let cluster = Cluster::connect(env).await?;
                crate::kube::replicas(&cluster, kind, name).await.map(i64::from)
            })
        },
    )
}

fn workload(exec: &Exec, env: Dynamic, kind: &str, name: &str) -> Result<Map> {
    let env = environment_arg(exec, &env)?;
    let kind: Kind = kind.parse()?;
    let target = describe_target(&env, kind, name);
    let placeholder = || {
        let mut m = Map::new();
        m.insert("kind".into(), kind.name().into());
        m.insert("name".into(), name.into());
        m.insert("namespace".into(), env.namespace.clone().into());
        for key in ["replicas", "ready", "available"] {
            m.insert(key.into(), Dynamic::from(0_i64));
        }
        m.insert("images".into(), Dynamic::from(rhai::Array::new()));
        m.insert("versions".into(), Dynamic::from(rhai::Array::new()));
        m.insert("version".into(), "".into());
        m.insert("env".into(), Dynamic::from(Map::new()));
        m.insert("env_source".into(), Dynamic::from(Map::new()));
        m
    };
    exec.query("workload", &target, placeholder, || {
        let info = exec.block_on(async {
            let cluster = Cluster::connect(&env).await?;
            crate::kube::workload(&cluster, kind, name).await
        })?;
        report_map(&info)
            .try_cast::<Map>()
            .ok_or_else(|| Error::Other("workload: cannot convert the answer".to_string()))
    })
}
