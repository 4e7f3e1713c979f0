//! Drawing the tree on the terminal with indicatif: one progress bar whose message is the live
//! area, redrawn ten times a second by a thread of its own; lines that are final go above it
//! with `MultiProgress::println`. Only that thread and questions ([`Live::suspend`]) touch the
//! terminal, so a log event never waits for the screen and a question never races a redraw.
//!
//! Every line passes the redaction layer twice over: when it enters the tree and in the
//! terminal writer itself ([`RedactingTerm`]), whatever a future line forgets.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use console::Term;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use super::terminal::{self, fit};
use super::tree::{Finish, Severity, Tree};
use drscript_base::redact::{redact, redacted};

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const FRAME: Duration = Duration::from_millis(100);

struct Draw {
    multi: MultiProgress,
    bar: ProgressBar,
}

pub struct Live {
    tree: Mutex<Tree>,
    draw: Mutex<Draw>,
    stop: AtomicBool,
    ticker: Mutex<Option<std::thread::JoinHandle<()>>>,
    started: Instant,
}

impl Live {
    pub fn start() -> Arc<Live> {
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(RedactingTerm(Term::buffered_stderr())), 20);
        let multi = MultiProgress::with_draw_target(target);
        let style = ProgressStyle::with_template("{msg}").expect("a constant template");
        let bar = multi.add(ProgressBar::no_length().with_style(style));
        let live = Arc::new(Live {
            tree: Mutex::default(),
            draw: Mutex::new(Draw { multi, bar }),
            stop: AtomicBool::new(false),
            ticker: Mutex::new(None),
            started: Instant::now(),
        });
        let ticking = live.clone();
        let handle = std::thread::Builder::new()
            .name("live-view".into())
            .spawn(move || {
                while !ticking.stop.load(Ordering::Relaxed) {
                    ticking.redraw(false);
                    std::thread::sleep(FRAME);
                }
            })
            .ok();
        *live.ticker.lock().unwrap() = handle;
        live
    }

    fn tree(&self) -> std::sync::MutexGuard<'_, Tree> {
        self.tree.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn step_started(&self, number: &str, title: &str) {
        self.tree().start(number, &redacted(title), Instant::now());
    }

    pub fn step_finished(&self, number: &str, how: Finish, took: Duration) {
        self.tree().finish(number, how, took);
    }

    pub fn step_skipped(&self, number: &str, title: &str) {
        self.tree().skip(number, &redacted(title));
    }

    pub fn waiting(&self, number: &str, what: Option<String>) {
        self.tree().waiting(number, what.map(redacted));
    }

    /// A log event: warnings and errors stay under their step; other lines say what the step
    /// does now, or, outside any step, are printed as they are (their first line).
    pub fn log(&self, step: Option<&str>, level: tracing::Level, text: &str) {
        let text = redacted(text);
        let mut tree = self.tree();
        match (level, step) {
            (tracing::Level::ERROR, _) => tree.note(step, Severity::Error, text),
            (tracing::Level::WARN, _) => tree.note(step, Severity::Warning, text),
            (_, Some(step)) => tree.doing(step, text),
            (_, None) => {
                let first = text.lines().next().unwrap_or_default();
                let more = if text.contains('\n') { " …" } else { "" };
                tree.line(format!("{first}{more}"));
            }
        }
    }

    pub fn say(&self, text: &str) {
        self.tree().line(redacted(text));
    }

    /// Takes the live area off the screen while `f` runs (a question to the operator), then
    /// draws it again.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        let draw = self.draw.lock().unwrap_or_else(|e| e.into_inner());
        draw.multi.suspend(f)
    }

    fn redraw(&self, last: bool) {
        let draw = self.draw.lock().unwrap_or_else(|e| e.into_inner());
        let width = terminal::width();
        let frame = (self.started.elapsed().as_millis() / FRAME.as_millis()) as usize % SPINNER.len();
        let (above, mut live) = {
            let mut tree = self.tree();
            let above = tree.take_printable(last);
            let live = if last { Vec::new() } else { tree.live(Instant::now(), SPINNER[frame]) };
            (above, live)
        };
        for line in above {
            let _ = draw.multi.println(fit(&line, width));
        }
        // Taller than the screen, the redraw could not reach its top: the rest is counted.
        let rows = terminal::height().saturating_sub(2).max(2);
        if live.len() > rows {
            let more = live.len() - rows + 1;
            live.truncate(rows - 1);
            live.push(format!("… {more} more lines"));
        }
        let lines: Vec<String> = live.iter().map(|l| fit(l, width)).collect();
        draw.bar.set_message(lines.join("\n"));
    }

    /// Prints what is left for good and removes the live area.
    pub fn finish(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.ticker.lock().unwrap().take() {
            let _ = handle.join();
        }
        self.redraw(true);
        let draw = self.draw.lock().unwrap_or_else(|e| e.into_inner());
        draw.bar.finish_and_clear();
        let _ = draw.multi.clear();
    }
}

/// stderr for indicatif, with every string redacted on its way out.
#[derive(Debug)]
struct RedactingTerm(Term);

impl TermLike for RedactingTerm {
    fn width(&self) -> u16 {
        self.0.size().1
    }
    fn height(&self) -> u16 {
        self.0.size().0
    }
    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        self.0.write_line(&redact(s))
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.0.write_str(&redact(s))
    }
    fn clear_line(&self) -> io::Result<()> {
        self.0.clear_line()
    }
    fn flush(&self) -> io::Result<()> {
        self.0.flush()
    }
}
