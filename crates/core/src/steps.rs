//! What the DR document requires of a switch's steps, whatever order a customer's runbook lists
//! them in: the source quiesced before anything is copied, both RabbitMQs stopped before the
//! volume is mirrored, the target started after the copy and before DNS moves, and DNS moved at
//! all. The same rules serve `drscript check` (from the script's text, before anything runs)
//! and the run itself (from the step list `switch` receives), as warnings: a customer may have a
//! reason, but never by accident.

/// One step as the rules see it: its builder (`scale_down`, `pause`, `copy_folders`, ...), the
/// side it acts on, the components it scales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub kind: String,
    pub name: String,
    pub side: String,
    pub components: Vec<String>,
    /// The steps of a `together`, which run at the same time.
    pub children: Vec<Shape>,
}

/// The builders of the stdlib that make steps, with the position of their `side` argument.
pub const BUILDERS: &[&str] = &[
    "scale_down",
    "scale_up",
    "pause",
    "resume",
    "fail_storage_over",
    "copy_folders",
    "mirror_rabbitmq",
    "check_serving",
    "update_dns",
    "together",
    "custom",
];

/// The problems of `steps` against the document, one sentence each (empty when it keeps every
/// rule).
pub fn requirements(steps: &[Shape]) -> Vec<String> {
    // Steps of one `together` run at the same time: they share a position.
    let mut flat: Vec<(usize, &Shape)> = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        if s.kind == "together" {
            flatten(i, &s.children, &mut flat);
        } else {
            flat.push((i, s));
        }
    }
    let first = |pred: &dyn Fn(&Shape) -> bool| flat.iter().filter(|(_, s)| pred(s)).map(|(i, _)| *i).min();
    let last = |pred: &dyn Fn(&Shape) -> bool| flat.iter().filter(|(_, s)| pred(s)).map(|(i, _)| *i).max();
    let scales = |kind: &'static str, side: &'static str, component: &'static str| {
        move |s: &Shape| s.kind == kind && s.side == side && s.components.iter().any(|c| c == component)
    };
    let mut out = Vec::new();
    let copy = first(&|s: &Shape| s.kind == "copy_folders" || s.kind == "mirror_rabbitmq");
    let dns = last(&|s: &Shape| s.kind == "update_dns");
    let quiesced = [
        ("the runtime of {source} scaled down (document step 1)", last(&scales("scale_down", "source", "runtime"))),
        ("the listener of {source} scaled down (document step 1)", last(&scales("scale_down", "source", "listener"))),
        (
            "the scheduler of {source} paused (document step 2)",
            last(&|s: &Shape| s.kind == "pause" && s.side == "source"),
        ),
    ];
    for (what, at) in quiesced {
        match (at, copy) {
            (None, _) => out.push(format!("no step has {what}: {{source}} keeps processing")),
            (Some(a), Some(c)) if a >= c => {
                out.push(format!("a copy starts before {what}: it would copy files that are still being written"))
            }
            _ => {}
        }
    }
    if let Some(mirror) = first(&|s: &Shape| s.kind == "mirror_rabbitmq") {
        for (what, at) in [
            (
                "RabbitMQ of {source} is scaled down (document step 3)",
                last(&scales("scale_down", "source", "rabbitmq")),
            ),
            (
                "RabbitMQ of {target} is scaled down (document step 4)",
                last(&scales("scale_down", "target", "rabbitmq")),
            ),
        ] {
            if at.is_none_or(|a| a >= mirror) {
                out.push(format!("the RabbitMQ volume is copied before {what}: a running broker's volume is replaced"));
            }
        }
    }
    if copy.is_none() {
        out.push("no copy step (copy_folders, mirror_rabbitmq): {target} starts on its own last copy".to_string());
    }
    let last_copy = last(&|s: &Shape| s.kind == "copy_folders" || s.kind == "mirror_rabbitmq");
    for component in ["rabbitmq", "runtime", "listener"] {
        let up = first(&move |s: &Shape| {
            s.kind == "scale_up" && s.side == "target" && s.components.iter().any(|c| c == component)
        });
        match (up, last_copy) {
            (None, _) => out.push(format!("no step scales the {component} of {{target}} up (document steps 10–11)")),
            (Some(u), Some(c)) if u <= c => out.push(format!(
                "the {component} of {{target}} starts before the copy ends: it would run on a half-copied state"
            )),
            _ => {}
        }
    }
    let resume = first(&|s: &Shape| s.kind == "resume" && s.side == "target");
    if resume.is_none() {
        out.push("no step resumes the scheduler of {target} (document step 12)".to_string());
    }
    match dns {
        None => out.push("no update_dns step: traffic stays on {source} (document step 13)".to_string()),
        Some(d) => {
            let ready = [
                last(&scales("scale_up", "target", "runtime")),
                last(&scales("scale_up", "target", "listener")),
                resume,
            ];
            if ready.iter().flatten().any(|r| *r >= d) {
                out.push(
                    "DNS moves to {target} before it is started and resumed (document step 13 comes last)".to_string(),
                );
            }
        }
    }
    out
}

fn flatten<'a>(at: usize, steps: &'a [Shape], out: &mut Vec<(usize, &'a Shape)>) {
    for s in steps {
        if s.kind == "together" {
            flatten(at, &s.children, out);
        } else {
            out.push((at, s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(kind: &str, side: &str, components: &[&str]) -> Shape {
        Shape {
            kind: kind.into(),
            name: kind.into(),
            side: side.into(),
            components: components.iter().map(|c| c.to_string()).collect(),
            children: vec![],
        }
    }

    fn together(children: Vec<Shape>) -> Shape {
        Shape { kind: "together".into(), name: "t".into(), side: String::new(), components: vec![], children }
    }

    fn document() -> Vec<Shape> {
        vec![
            together(vec![step("scale_down", "source", &["runtime", "listener"]), step("pause", "source", &[])]),
            together(vec![step("scale_down", "source", &["rabbitmq"]), step("scale_down", "target", &["rabbitmq"])]),
            step("fail_storage_over", "", &[]),
            together(vec![step("copy_folders", "", &[]), step("mirror_rabbitmq", "", &[])]),
            step("scale_up", "target", &["rabbitmq"]),
            step("scale_up", "target", &["runtime", "listener"]),
            step("resume", "target", &[]),
            step("check_serving", "", &[]),
            step("update_dns", "", &[]),
        ]
    }

    #[test]
    fn the_documents_order_keeps_every_rule() {
        assert_eq!(requirements(&document()), Vec::<String>::new());
    }

    #[test]
    fn a_copy_before_the_quiesce_and_a_missing_dns_step_are_named() {
        let mut steps = document();
        steps.swap(0, 3);
        steps.pop();
        let problems = requirements(&steps);
        assert!(
            problems.iter().any(|p| p.contains("a copy starts before the runtime of {source} scaled down")),
            "{problems:?}"
        );
        assert!(problems.iter().any(|p| p.contains("no update_dns step")), "{problems:?}");
    }

    #[test]
    fn a_mirror_beside_the_brokers_stop_is_not_after_it() {
        let mut steps = document();
        steps.remove(1);
        steps.insert(2, together(vec![step("scale_down", "source", &["rabbitmq"]), step("mirror_rabbitmq", "", &[])]));
        let problems = requirements(&steps);
        assert!(problems.iter().any(|p| p.contains("RabbitMQ of {source} is scaled down")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("RabbitMQ of {target} is scaled down")), "{problems:?}");
    }

    #[test]
    fn an_extra_step_of_the_customer_changes_nothing() {
        let mut steps = document();
        steps.insert(8, step("custom", "", &[]));
        steps.insert(6, step("scale_up", "target", &["webrunner"]));
        assert_eq!(requirements(&steps), Vec::<String>::new());
    }
}
