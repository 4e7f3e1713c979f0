//! "What this step waits for", published by primitives while they wait (`dr ac-ac-runtime 1/2
//! ready`, `copy web/repository 120/296 files, 1.2/4.0 MiB`) and shown on the step's line.
//!
//! A primitive does not know its step: the step stack belongs to the script's thread, while a
//! wait may run in a future polled elsewhere and a sync reports from the engine's tasks. So the
//! step is captured where it is known ([`Status::here`] on the script's thread, or
//! [`in_step`] around the futures that [`crate::exec::Exec::block_on`] runs) and the text goes
//! to that step. Without a live view nothing is kept.

use std::future::Future;

use crate::exec::Exec;

tokio::task_local! {
    static STEP: Option<String>;
}

/// The number of the step this code runs for: the future's (see [`in_step`]), else the thread's.
pub fn current_step() -> Option<String> {
    STEP.try_with(Clone::clone)
        .ok()
        .flatten()
        .or_else(|| Exec::current_step().map(|f| f.number))
        .filter(|n| !n.is_empty())
}

/// Runs `fut` as part of the current thread's step, so that [`waiting`] inside it finds the step.
pub async fn in_step<T>(fut: impl Future<Output = T>) -> T {
    let step = current_step();
    STEP.scope(step, fut).await
}

/// Says what the current step waits for now.
pub fn waiting(text: impl Into<String>) {
    Status::here().set(text);
}

/// The status line of one step, to be set from any thread.
#[derive(Debug, Clone)]
pub struct Status {
    step: Option<String>,
}

impl Status {
    /// The status of the step this code runs for.
    pub fn here() -> Status {
        Status { step: current_step() }
    }

    pub fn set(&self, text: impl Into<String>) {
        if let Some(step) = &self.step {
            super::with_live(|live| live.waiting(step, Some(text.into())));
        }
    }

    /// Nothing to wait for any more (the step goes on with other work).
    pub fn clear(&self) {
        if let Some(step) = &self.step {
            super::with_live(|live| live.waiting(step, None));
        }
    }
}
