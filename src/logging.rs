//! Logs through `tracing`: readable text on stderr by default, JSON on request, optionally a
//! file too. Every sink writes through the redaction layer.
//!
//! On a terminal a run draws the live view ([`crate::view`]) instead: while it draws, the plain
//! stderr lines are held back and the view's layer takes the events (the log file keeps them all).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use drscript_base::error::{Error, Result};
use drscript_base::redact::RedactingWriter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub struct LogOptions {
    pub format: LogFormat,
    pub file: Option<PathBuf>,
    /// -1 quiet, 0 normal, 1 debug, 2+ trace.
    pub verbosity: i8,
    pub color: bool,
}

struct Clock;

impl FormatTime for Clock {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        write!(w, "{}", chrono::Local::now().format("%H:%M:%S"))
    }
}

#[derive(Clone)]
struct Redacting<M>(M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter::new(self.0.make_writer())
    }
}

/// stderr, silent while the live view draws (it shows the same events its own way).
#[derive(Clone, Copy)]
struct PlainStderr;

enum Plain {
    Stderr(std::io::Stderr),
    Held,
}

impl std::io::Write for Plain {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Plain::Stderr(s) => s.write(buf),
            Plain::Held => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Plain::Stderr(s) => s.flush(),
            Plain::Held => Ok(()),
        }
    }
}

impl<'a> MakeWriter<'a> for PlainStderr {
    type Writer = Plain;
    fn make_writer(&'a self) -> Self::Writer {
        if crate::view::is_active() { Plain::Held } else { Plain::Stderr(std::io::stderr()) }
    }
}

#[derive(Clone)]
struct SharedFile(Arc<Mutex<std::fs::File>>);

impl std::io::Write for &SharedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap().flush()
    }
}

impl<'a> MakeWriter<'a> for SharedFile {
    type Writer = &'a SharedFile;
    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

pub fn init(options: &LogOptions) -> Result<()> {
    let level = match options.verbosity {
        i8::MIN..=-1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    // kube-client logs every non-2xx answer as an ERROR without naming the object, even the 429s
    // and 5xx drscript retries: drscript reports what finally failed itself, so those are off.
    let quiet_libs = if options.verbosity >= 2 {
        ""
    } else {
        ",kube_client::client::builder=off,kube=warn,hyper=warn,hyper_util=warn,reqwest=warn,rustls=warn,tower=warn,h2=warn,azure_core=warn,typespec_client_core=warn"
    };
    let filter = || EnvFilter::new(format!("{level}{quiet_libs}"));
    let terminal = crate::view::Terminal::detect(options.format == LogFormat::Text, options.verbosity, !options.color);
    crate::view::allow(terminal);
    let view_layer = terminal.live().then(|| crate::view::ViewLayer.with_filter(filter()));
    let stderr = Redacting(PlainStderr);
    let stderr_layer = match options.format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(stderr)
            .with_target(false)
            .with_timer(Clock)
            .with_ansi(options.color)
            .with_filter(filter())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer().json().with_writer(stderr).with_filter(filter()).boxed(),
    };
    let file_layer = match &options.file {
        None => None,
        Some(path) => {
            let mut open = std::fs::OpenOptions::new();
            open.create(true).append(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
            let file = open.open(path).map_err(|e| Error::Usage(format!("--log-file {}: {e}", path.display())))?;
            let writer = Redacting(SharedFile(Arc::new(Mutex::new(file))));
            Some(match options.format {
                LogFormat::Text => {
                    tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(false).with_filter(filter()).boxed()
                }
                LogFormat::Json => {
                    tracing_subscriber::fmt::layer().json().with_writer(writer).with_filter(filter()).boxed()
                }
            })
        }
    };
    let _ = tracing_subscriber::registry().with(stderr_layer).with(view_layer).with(file_layer).try_init();
    Ok(())
}
