//! HorizontalPodAutoscalers: `autoscaling/v2` objects (served as `autoscaling/v1` too, by
//! conversion), the API server's defaulting and validation of them, and the HPA controller.
//!
//! Defaulting and validation are the API server's: `minReplicas` defaults to 1 and `metrics` to
//! 80% CPU utilization; `maxReplicas` must be at least 1, `minReplicas` at least 1 (0 only with
//! the `HPAScaleToZero` feature gate, off by default) and at most `maxReplicas`;
//! `scaleTargetRef.kind` and `.name` are required. Refusals are 422 `Invalid` with every cause,
//! in the API server's words.
//!
//! The controller runs every [`PERIOD`] (the real one every 15 s) and has no metrics: a metric
//! target is taken as met, so the desired count is the current one clamped into
//! `[minReplicas, maxReplicas]`. As the real controller it reads the target's `spec.replicas`,
//! and when that is 0 it does nothing (`ScalingActive=False`, `ScalingDisabled`): this is how a
//! workload scaled to 0 stays at 0 with an HPA on it. Out of bounds, it writes the target's
//! `spec.replicas` through the scale subresource as `kube-controller-manager` (the managed fields
//! entry a real cluster shows), records a `SuccessfulRescale` event, and keeps
//! `status.currentReplicas`, `desiredReplicas`, `lastScaleTime`, `currentMetrics` and the
//! `AbleToScale`, `ScalingActive`, `ScalingLimited` conditions as the real one words them.
//! Targets other than deployments and statefulsets of the HPA's namespace fail with
//! `FailedGetScale`, as a kind the API server does not serve does.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use drscript_base::error::Error;

use super::controller::Controller;
use super::events::{Level, Recorder};
use super::managed::{self, Writer};
use super::store::{Res, Store, now};
use super::validate::{FieldError, Refusal};

/// How often the controller looks at every HPA.
pub const PERIOD: Duration = Duration::from_millis(250);

/// The manager the HPA controller writes a target's scale as: kube-controller-manager's user
/// agent prefix.
pub const MANAGER: &str = "kube-controller-manager";

const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
const CURRENT_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const DEFAULT_CPU: i64 = 80;

fn cpu_metric(utilization: &Value) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": utilization}}})
}

/// The `autoscaling/v2` defaults: `minReplicas` 1, `metrics` 80% CPU utilization.
pub(crate) fn default(hpa: &mut Value) {
    let spec = &mut hpa["spec"];
    if spec["minReplicas"].is_null() {
        spec["minReplicas"] = json!(1);
    }
    if spec["metrics"].as_array().is_none_or(|m| m.is_empty()) {
        spec["metrics"] = json!([cpu_metric(&json!(DEFAULT_CPU))]);
    }
}

/// The API server's checks of an HPA's spec (after defaulting).
pub(crate) fn validate(name: &str, hpa: &Value) -> Result<(), Refusal> {
    let spec = &hpa["spec"];
    let mut errors = Vec::new();
    let int = |field: &str, v: &Value| -> Result<Option<i64>, Refusal> {
        match v {
            Value::Null => Ok(None),
            v => v.as_i64().map(Some).ok_or_else(|| {
                Refusal::bad_request(format!(
                    "HorizontalPodAutoscaler in version \"v2\" cannot be handled as a HorizontalPodAutoscaler: json: cannot unmarshal {} into Go struct field HorizontalPodAutoscalerSpec.spec.{field} of type int32",
                    json_type(v)
                ))
            }),
        }
    };
    let min = int("minReplicas", &spec["minReplicas"])?;
    let max = int("maxReplicas", &spec["maxReplicas"])?.unwrap_or(0);
    if let Some(m) = min
        && m < 1
    {
        errors.push(FieldError::invalid("spec.minReplicas", &json!(m), "must be greater than or equal to 1"));
    }
    if max < 1 {
        errors.push(FieldError::invalid("spec.maxReplicas", &json!(max), "must be greater than 0"));
    }
    if let Some(m) = min
        && max < m
    {
        errors.push(FieldError::invalid(
            "spec.maxReplicas",
            &json!(max),
            "must be greater than or equal to `minReplicas`",
        ));
    }
    let target = &spec["scaleTargetRef"];
    for field in ["kind", "name"] {
        match target[field].as_str().unwrap_or_default() {
            "" => errors.push(FieldError::required(&format!("spec.scaleTargetRef.{field}"), "")),
            v if v == "." || v == ".." || v.contains('/') || v.contains('%') => errors.push(FieldError::invalid(
                &format!("spec.scaleTargetRef.{field}"),
                &json!(v),
                "may not be '.', '..' or contain '/' or '%'",
            )),
            _ => {}
        }
    }
    for (i, metric) in spec["metrics"].as_array().into_iter().flatten().enumerate() {
        let path = format!("spec.metrics[{i}]");
        let kinds = ["ContainerResource", "External", "Object", "Pods", "Resource"];
        let kind = metric["type"].as_str().unwrap_or_default();
        if !kinds.contains(&kind) {
            errors.push(FieldError::not_supported(&format!("{path}.type"), kind, &kinds));
            continue;
        }
        if kind == "Resource" {
            let target = &metric["resource"]["target"];
            if metric["resource"]["name"].as_str().unwrap_or_default().is_empty() {
                errors.push(FieldError::required(&format!("{path}.resource.name"), "must specify a resource name"));
            }
            if let Some(u) = target["averageUtilization"].as_i64()
                && u < 1
            {
                errors.push(FieldError::invalid(
                    &format!("{path}.resource.target.averageUtilization"),
                    &json!(u),
                    "must be greater than 0",
                ));
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(Refusal::invalid_all(Res::HorizontalPodAutoscaler, name, &errors)) }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        _ => "number",
    }
}

/// An `autoscaling/v2` HPA as `autoscaling/v1` serves it: the CPU utilization target as
/// `targetCPUUtilizationPercentage`, the conditions and current metrics as the annotations the
/// API server's conversion writes.
pub(crate) fn to_v1(hpa: &Value) -> Value {
    let mut out = hpa.clone();
    out["apiVersion"] = json!("autoscaling/v1");
    let spec = &hpa["spec"];
    let cpu = spec["metrics"].as_array().into_iter().flatten().find(|m| {
        m["type"] == "Resource" && m["resource"]["name"] == "cpu" && m["resource"]["target"]["type"] == "Utilization"
    });
    let mut v1_spec = json!({"scaleTargetRef": spec["scaleTargetRef"], "minReplicas": spec["minReplicas"], "maxReplicas": spec["maxReplicas"]});
    if let Some(u) = cpu.map(|m| &m["resource"]["target"]["averageUtilization"]).filter(|u| !u.is_null()) {
        v1_spec["targetCPUUtilizationPercentage"] = u.clone();
    }
    out["spec"] = v1_spec;
    let status = &hpa["status"];
    let mut v1_status = json!({"desiredReplicas": status["desiredReplicas"].as_i64().unwrap_or(0)});
    for field in ["observedGeneration", "lastScaleTime", "currentReplicas"] {
        if !status[field].is_null() {
            v1_status[field] = status[field].clone();
        }
    }
    let current_cpu = status["currentMetrics"].as_array().into_iter().flatten().find_map(|m| {
        (m["type"] == "Resource" && m["resource"]["name"] == "cpu")
            .then(|| m["resource"]["current"]["averageUtilization"].clone())
            .filter(|u| !u.is_null())
    });
    if let Some(u) = current_cpu {
        v1_status["currentCPUUtilizationPercentage"] = u;
    }
    out["status"] = v1_status;
    for (annotation, value) in
        [(CONDITIONS_ANNOTATION, &status["conditions"]), (CURRENT_METRICS_ANNOTATION, &status["currentMetrics"])]
    {
        if value.as_array().is_some_and(|a| !a.is_empty()) {
            out["metadata"]["annotations"][annotation] = json!(value.to_string());
        }
    }
    out
}

/// An `autoscaling/v1` body as the `autoscaling/v2` object it stands for. `stored`: the object it
/// replaces, whose other metrics and `behavior` a v1 client cannot see and so keeps.
pub(crate) fn from_v1(body: &Value, stored: Option<&Value>) -> Value {
    let mut out = body.clone();
    out["apiVersion"] = json!("autoscaling/v2");
    let spec = &body["spec"];
    let mut metrics: Vec<Value> = stored
        .and_then(|s| s["spec"]["metrics"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|m| !(m["type"] == "Resource" && m["resource"]["name"] == "cpu"))
        .collect();
    if !spec["targetCPUUtilizationPercentage"].is_null() {
        metrics.insert(0, cpu_metric(&spec["targetCPUUtilizationPercentage"]));
    }
    let mut v2_spec = json!({"scaleTargetRef": spec["scaleTargetRef"], "minReplicas": spec["minReplicas"], "maxReplicas": spec["maxReplicas"]});
    if !metrics.is_empty() {
        v2_spec["metrics"] = json!(metrics);
    }
    if let Some(behavior) = stored.map(|s| &s["spec"]["behavior"]).filter(|b| !b.is_null()) {
        v2_spec["behavior"] = behavior.clone();
    }
    out["spec"] = v2_spec;
    if let Some(annotations) = out["metadata"]["annotations"].as_object_mut() {
        annotations.remove(CONDITIONS_ANNOTATION);
        annotations.remove(CURRENT_METRICS_ANNOTATION);
    }
    // Status comes from the stored object or the controller; v1's shape is not stored.
    out["status"] = stored.map_or(json!({"desiredReplicas": 0}), |s| s["status"].clone());
    out
}

/// An HPA on a sandbox workload at start: `ENV/WORKLOAD=MIN:MAX` (`prod/ac-ac-runtime=1:3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HpaSeed {
    /// The sandbox environment (`prod`, `dr`).
    pub env: String,
    /// The deployment or statefulset (`ac-ac-runtime`); the HPA has its name.
    pub workload: String,
    pub min: i32,
    pub max: i32,
}

impl FromStr for HpaSeed {
    type Err = Error;

    fn from_str(s: &str) -> Result<HpaSeed, Error> {
        let usage = |why: &str| {
            Error::Usage(format!("--hpa `{s}`: {why}: expected ENV/WORKLOAD=MIN:MAX, e.g. prod/ac-ac-runtime=1:3"))
        };
        let (target, bounds) = s.split_once('=').ok_or_else(|| usage("no `=`"))?;
        let (env, workload) = target.split_once('/').ok_or_else(|| usage("no `/`"))?;
        let (min, max) = bounds.split_once(':').ok_or_else(|| usage("no `:` between MIN and MAX"))?;
        let min: i32 = min.trim().parse().map_err(|_| usage("MIN is not a number"))?;
        let max: i32 = max.trim().parse().map_err(|_| usage("MAX is not a number"))?;
        if env.is_empty() || workload.is_empty() {
            return Err(usage("empty environment or workload"));
        }
        if min < 1 || max < min {
            return Err(usage("the bounds must be 1 <= MIN <= MAX (an HPA's minReplicas cannot be 0)"));
        }
        Ok(HpaSeed { env: env.to_string(), workload: workload.to_string(), min, max })
    }
}

impl fmt::Display for HpaSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}={}:{}", self.env, self.workload, self.min, self.max)
    }
}

/// The HPA object `kubectl autoscale KIND/NAME --min MIN --max MAX` creates (in v2 form).
pub(crate) fn object(ns: &str, kind: &str, name: &str, min: i32, max: i32) -> Value {
    let mut hpa = json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": name},
            "minReplicas": min, "maxReplicas": max
        },
        "status": {"desiredReplicas": 0}
    });
    default(&mut hpa);
    hpa
}

/// The HPA controller.
pub(crate) struct HpaController {
    store: Arc<Store>,
    workloads: Arc<Controller>,
    events: Recorder,
}

/// Sets a condition as the controller's `setCondition`: the transition time changes only with
/// the status.
fn set_condition(conditions: &mut Vec<Value>, kind: &str, status: bool, reason: &str, message: &str) {
    let status = if status { "True" } else { "False" };
    match conditions.iter_mut().find(|c| c["type"] == kind) {
        Some(c) => {
            if c["status"] != status {
                c["lastTransitionTime"] = json!(now());
            }
            c["status"] = json!(status);
            c["reason"] = json!(reason);
            c["message"] = json!(message);
        }
        None => conditions.push(json!({
            "type": kind, "status": status, "lastTransitionTime": now(), "reason": reason, "message": message
        })),
    }
}

/// The metric statuses of a target that is met: each current value is its target.
fn met(metrics: &Value) -> Vec<Value> {
    metrics
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let kind = m["type"].as_str()?;
            let source = match kind {
                "Resource" => "resource",
                "ContainerResource" => "containerResource",
                _ => return None,
            };
            let target = &m[source]["target"];
            let mut current = json!({});
            for (t, c) in [("averageUtilization", "averageUtilization"), ("averageValue", "averageValue")] {
                if !target[t].is_null() {
                    current[c] = target[t].clone();
                }
            }
            let mut status = json!({"type": kind, source: {"name": m[source]["name"], "current": current}});
            if kind == "ContainerResource" {
                status[source]["container"] = m[source]["container"].clone();
            }
            Some(status)
        })
        .collect()
}

/// How the first metric is named in `ValidMetricFound`.
fn metric_name(metrics: &Value) -> String {
    let m = &metrics[0];
    match m["type"].as_str().unwrap_or_default() {
        "Resource" if m["resource"]["target"]["type"] == "Utilization" => {
            format!("{} resource utilization (percentage of request)", m["resource"]["name"].as_str().unwrap_or("cpu"))
        }
        "Resource" => format!("{} resource", m["resource"]["name"].as_str().unwrap_or("cpu")),
        "ContainerResource" => format!(
            "{} container resource utilization (percentage of request)",
            m["containerResource"]["name"].as_str().unwrap_or("cpu")
        ),
        "Pods" => format!("pods metric {}", m["pods"]["metric"]["name"].as_str().unwrap_or_default()),
        "Object" => format!(
            "{} metric {}",
            m["object"]["describedObject"]["kind"].as_str().unwrap_or_default().to_lowercase(),
            m["object"]["metric"]["name"].as_str().unwrap_or_default()
        ),
        _ => format!("external metric {}", m["external"]["metric"]["name"].as_str().unwrap_or_default()),
    }
}

impl HpaController {
    /// Starts the control loop on the current tokio runtime.
    pub fn spawn(store: Arc<Store>, workloads: Arc<Controller>) -> tokio::task::JoinHandle<()> {
        let controller = HpaController { events: Recorder::new(Arc::clone(&store)), store, workloads };
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                for hpa in controller.store.list(Res::HorizontalPodAutoscaler, None).0 {
                    controller.reconcile(&hpa);
                }
            }
        })
    }

    fn reconcile(&self, hpa: &Value) {
        let ns = hpa["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = hpa["metadata"]["name"].as_str().unwrap_or_default();
        let spec = &hpa["spec"];
        let mut status = hpa["status"].clone();
        let mut conditions = status["conditions"].as_array().cloned().unwrap_or_default();
        let target = &spec["scaleTargetRef"];
        let kind = target["kind"].as_str().unwrap_or_default();
        let target_name = target["name"].as_str().unwrap_or_default();
        let group = target["apiVersion"].as_str().and_then(|v| v.split_once('/')).map_or("", |(g, _)| g);
        let res = match (group, kind) {
            ("apps", "Deployment") => Ok(Res::Deployment),
            ("apps", "StatefulSet") => Ok(Res::StatefulSet),
            _ => Err(format!("no matches for kind {kind:?} in group {group:?}")),
        };
        let workload = res.and_then(|r| {
            self.store
                .get(r, ns, target_name)
                .map(|w| (r, w))
                .ok_or_else(|| format!("{} {target_name:?} not found", r.qualified()))
        });
        let (res, workload) = match workload {
            Ok(found) => found,
            Err(e) => {
                let message = format!("the HPA controller was unable to get the target's current scale: {e}");
                let was = conditions.iter().find(|c| c["type"] == "AbleToScale").map(|c| c["reason"].clone());
                set_condition(&mut conditions, "AbleToScale", false, "FailedGetScale", &message);
                if was != Some(json!("FailedGetScale")) {
                    self.events.record(hpa, Level::Warning, "FailedGetScale", &e, "horizontal-pod-autoscaler");
                }
                status["conditions"] = json!(conditions);
                self.write_status(ns, name, status);
                return;
            }
        };
        set_condition(
            &mut conditions,
            "AbleToScale",
            true,
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        );
        let current = workload["spec"]["replicas"].as_i64().unwrap_or(1);
        let min = spec["minReplicas"].as_i64().unwrap_or(1);
        let max = spec["maxReplicas"].as_i64().unwrap_or(1);
        let mut metric_statuses = Vec::new();
        let (desired, reason) = if current == 0 && min != 0 {
            set_condition(
                &mut conditions,
                "ScalingActive",
                false,
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            );
            (0, None)
        } else if current > max {
            (max, Some("Current number of replicas above Spec.MaxReplicas"))
        } else if current < min {
            (min, Some("Current number of replicas below Spec.MinReplicas"))
        } else {
            // No metrics here: every target is met, and the recommendation is the current count.
            metric_statuses = met(&spec["metrics"]);
            let found = format!(
                "the HPA was able to successfully calculate a replica count from {}",
                metric_name(&spec["metrics"])
            );
            set_condition(&mut conditions, "ScalingActive", true, "ValidMetricFound", &found);
            set_condition(
                &mut conditions,
                "AbleToScale",
                true,
                "ReadyForNewScale",
                "recommended size matches current size",
            );
            set_condition(
                &mut conditions,
                "ScalingLimited",
                false,
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
            );
            (current, None)
        };
        if let Some(reason) = reason {
            let rescaled = self.store.update(res, ns, target_name, rv(&workload), |o| {
                let before = o.clone();
                o["spec"]["replicas"] = json!(desired);
                managed::record(res, res.api_version(), Some(&before), o, &Writer::update(MANAGER).on("scale"));
                Ok(())
            });
            match rescaled {
                Ok(_) => {
                    self.workloads.enqueue(res, ns, target_name);
                    set_condition(
                        &mut conditions,
                        "AbleToScale",
                        true,
                        "SucceededRescale",
                        &format!("the HPA controller was able to update the target scale to {desired}"),
                    );
                    self.events.record(
                        hpa,
                        Level::Normal,
                        "SuccessfulRescale",
                        &format!("New size: {desired}; reason: {reason}"),
                        "horizontal-pod-autoscaler",
                    );
                    status["lastScaleTime"] = json!(now());
                }
                // Changed under us: the next round sees the new count.
                Err(_) => return,
            }
        }
        let mut next = json!({"desiredReplicas": if reason.is_some() { desired } else { current }});
        if current > 0 {
            next["currentReplicas"] = json!(current);
        }
        if !metric_statuses.is_empty() {
            next["currentMetrics"] = json!(metric_statuses);
        }
        if !status["lastScaleTime"].is_null() {
            next["lastScaleTime"] = status["lastScaleTime"].clone();
        }
        next["conditions"] = json!(conditions);
        self.write_status(ns, name, next);
    }

    /// Writes the HPA's status (nothing when it is unchanged).
    fn write_status(&self, ns: &str, name: &str, status: Value) {
        let _ = self.store.update(Res::HorizontalPodAutoscaler, ns, name, None, |o| {
            o["status"] = status;
            Ok(())
        });
    }
}

fn rv(object: &Value) -> Option<&str> {
    object["metadata"]["resourceVersion"].as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpa(spec: Value) -> Value {
        let mut h = json!({"metadata": {"name": "h"}, "spec": spec});
        default(&mut h);
        h
    }

    #[test]
    fn bounds_are_checked_as_the_api_server_checks_them() {
        let target = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"});
        assert!(validate("h", &hpa(json!({"scaleTargetRef": target, "maxReplicas": 3}))).is_ok());
        let r = validate("h", &hpa(json!({"scaleTargetRef": target, "maxReplicas": 0}))).unwrap_err();
        assert_eq!(
            r.message,
            "HorizontalPodAutoscaler.autoscaling \"h\" is invalid: [spec.maxReplicas: Invalid value: 0: must be greater than 0, spec.maxReplicas: Invalid value: 0: must be greater than or equal to `minReplicas`]"
        );
        let r = validate("h", &hpa(json!({"scaleTargetRef": target, "minReplicas": 0, "maxReplicas": 2}))).unwrap_err();
        assert_eq!(
            r.message,
            "HorizontalPodAutoscaler.autoscaling \"h\" is invalid: spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"
        );
        assert_eq!(r.details["causes"][0]["field"], "spec.minReplicas");
        let r = validate("h", &hpa(json!({"scaleTargetRef": {"name": "d"}, "maxReplicas": 2}))).unwrap_err();
        assert!(r.message.ends_with("spec.scaleTargetRef.kind: Required value"), "{}", r.message);
    }

    #[test]
    fn v1_round_trips_the_cpu_target_and_keeps_other_metrics() {
        let mut stored = object("ns", "Deployment", "d", 1, 3);
        stored["spec"]["metrics"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 70}}}));
        let v1 = to_v1(&stored);
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 80);
        assert!(v1["spec"]["metrics"].is_null());
        let mut changed = v1.clone();
        changed["spec"]["targetCPUUtilizationPercentage"] = json!(60);
        let v2 = from_v1(&changed, Some(&stored));
        assert_eq!(v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 60);
        assert_eq!(v2["spec"]["metrics"][1]["resource"]["name"], "memory");
    }

    #[test]
    fn hpa_seeds_parse_and_refuse_a_zero_minimum() {
        let s: HpaSeed = "prod/ac-ac-runtime=1:3".parse().unwrap();
        assert_eq!((s.env.as_str(), s.workload.as_str(), s.min, s.max), ("prod", "ac-ac-runtime", 1, 3));
        assert_eq!(s.to_string(), "prod/ac-ac-runtime=1:3");
        assert!("prod/x=0:3".parse::<HpaSeed>().unwrap_err().to_string().contains("MIN"));
        assert!("prod/x=3:1".parse::<HpaSeed>().is_err());
        assert!("x=1:2".parse::<HpaSeed>().unwrap_err().to_string().contains("ENV/WORKLOAD=MIN:MAX"));
    }
}
