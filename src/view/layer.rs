//! The tracing layer that hands log events to the live view while it draws (the plain stderr
//! layer is silent meanwhile; a `--log-file` keeps every line). An event belongs to the step of
//! the thread or future that logged it.

use std::fmt::Write;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;

pub use drscript_core::observer::PLAIN_ONLY;

pub struct ViewLayer;

impl<S: Subscriber> tracing_subscriber::Layer<S> for ViewLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() == PLAIN_ONLY {
            return;
        }
        super::with_live(|live| {
            let mut text = Text::default();
            event.record(&mut text);
            live.log(drscript_core::observer::current_step().as_deref(), *event.metadata().level(), &text.0);
        });
    }
}

/// The message, then any other field as `name=value` (as the plain format writes them).
#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}{rest}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}
