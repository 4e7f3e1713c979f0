//! The one retry policy of drscript's clients: how many tries, how long between them, which
//! failures are worth another try, and how long a server may ask us to wait.
//!
//! It is azcopy's policy (20 tries, exponential backoff from 1 s to 60 s) made a little smarter:
//! each wait carries ±20 % jitter so that sixteen transfers throttled together do not come back
//! together, a server's `x-ms-retry-after-ms`, `retry-after-ms` or `Retry-After` (seconds or an
//! HTTP date) is honoured: taken as asked for the first [`AS_ASKED`] retries (as the Azure SDKs
//! take it), then waited at least (the longer of it and the computed wait: a throttled service
//! that keeps saying "1 s" does not use up twenty tries in twenty seconds), and an overall
//! deadline ends the tries early (a wait that would end past it is not started). Each client
//! keeps its own budget ([`Policy`]): a share copy is patient, an interactive call to ARM or a
//! gateway less so.
//!
//! It holds no I/O: [`Retry::next`] says how long to wait, the caller sleeps on its own runtime,
//! so the module needs no async runtime and every loop over it keeps the caller's shape
//! (classify the failure, ask for the wait, sleep, try again). Client logic lives here, so the
//! sandbox's emulators never use it: the throttling emulator writes its own `Retry-After`.
//!
//! Tests shrink the computed waits of the long budgets ([`Policy::scalable`]: a share copy's)
//! with `DRSCRIPT_RETRY_SCALE` (a factor, e.g. `0.01`; the workspace's `.cargo/config.toml` sets
//! it for `cargo test` and `cargo nextest`); it exists for the test suite and is not an operator
//! setting. A server-asked wait is never scaled: it is
//! honoured as asked (up to [`MAX_ASKED`]), and the emulators that ask keep their own time.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Statuses worth another try: timeouts, throttling and a server's passing trouble. 501 (not
/// implemented) and 505 never get better.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Methods that may be sent again without doing twice what they do. A `POST` may have been
/// acted on before its answer was lost; its caller decides (it reads the state again first).
pub fn idempotent(method: &str) -> bool {
    matches!(method.to_ascii_uppercase().as_str(), "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS")
}

/// The longest wait a server may ask for: a `Retry-After` of an hour is a server's mistake, not
/// a reason to sit still through an outage window.
pub const MAX_ASKED: Duration = Duration::from_secs(300);

/// The retries on which a server's wait is taken as asked ([`Retry::next`]); later ones wait the
/// longer of it and the computed wait.
pub const AS_ASKED: u32 = 4;

/// The environment variable that scales every computed wait, for the test suite only.
pub const SCALE_ENV: &str = "DRSCRIPT_RETRY_SCALE";

fn scale() -> f64 {
    static SCALE: std::sync::LazyLock<f64> = std::sync::LazyLock::new(|| {
        std::env::var(SCALE_ENV).ok().and_then(|v| v.trim().parse::<f64>().ok()).filter(|f| *f >= 0.0).unwrap_or(1.0)
    });
    *SCALE
}

/// How patient a client is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Tries in all, the first included (1 = no retry).
    pub tries: u32,
    /// The first wait; each later one doubles, up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// From the first try: no try starts after it, and no wait is begun that would end past it.
    pub deadline: Option<Duration>,
    /// Whether [`SCALE_ENV`] shrinks the computed waits: set on the long budgets (a share copy's)
    /// that would make a test of an unreachable service last minutes; the short ones of
    /// interactive clients keep their real waits in tests too.
    pub scalable: bool,
}

impl Policy {
    /// azcopy's budget (`ste` upload policy: 20 tries, 1 s to 60 s): per request of a share copy.
    pub const AZCOPY: Policy = Policy::new(20, Duration::from_secs(1), Duration::from_secs(60)).scalable();

    pub const fn new(tries: u32, first_delay: Duration, max_delay: Duration) -> Policy {
        Policy { tries, first_delay, max_delay, deadline: None, scalable: false }
    }

    /// A policy whose computed waits [`SCALE_ENV`] shrinks.
    pub const fn scalable(mut self) -> Policy {
        self.scalable = true;
        self
    }

    pub const fn with_deadline(mut self, deadline: Duration) -> Policy {
        self.deadline = Some(deadline);
        self
    }

    /// The tries of one request, starting now.
    pub fn start(&self) -> Retry {
        self.start_at(Instant::now())
    }

    /// The tries of one request under a deadline counted from `origin` (a share copy's start).
    pub fn start_at(&self, origin: Instant) -> Retry {
        Retry { policy: *self, tries: 1, origin, noise: seed(), scale: if self.scalable { scale() } else { 1.0 } }
    }

    /// The computed wait after try `n` (1-based), before jitter and scale.
    pub fn backoff(&self, n: u32) -> Duration {
        let doubled = self.first_delay.saturating_mul(1u32 << n.saturating_sub(1).min(20));
        doubled.min(self.max_delay)
    }

    /// The longest the computed waits of a whole budget add up to (the jitter aside): what a
    /// plan shows as "up to".
    pub fn patience(&self) -> Duration {
        (1..self.tries).map(|n| self.backoff(n)).sum()
    }
}

/// The tries of one request.
#[derive(Debug, Clone)]
pub struct Retry {
    policy: Policy,
    tries: u32,
    origin: Instant,
    noise: u64,
    /// [`SCALE_ENV`] as read at the start.
    scale: f64,
}

impl Retry {
    /// The waits as the policy says, whatever [`SCALE_ENV`] says (tests of the policy itself).
    pub fn unscaled(mut self) -> Retry {
        self.scale = 1.0;
        self
    }

    /// Tries made so far (the first included).
    pub fn tries(&self) -> u32 {
        self.tries
    }

    /// Whether another try may follow (tries left, deadline not passed): for loops that decide
    /// before they know the wait.
    pub fn has_more(&self) -> bool {
        self.tries < self.policy.tries && !self.expired()
    }

    /// True when the deadline has passed.
    pub fn expired(&self) -> bool {
        self.policy.deadline.is_some_and(|d| self.origin.elapsed() >= d)
    }

    /// After a failed try worth retrying: the wait before the next one, or `None` when the budget
    /// (tries or deadline) is spent. `asked` is the server's wait ([`retry_after`]): the wait is
    /// at least that.
    pub fn next(&mut self, asked: Option<Duration>) -> Option<Duration> {
        if self.tries >= self.policy.tries {
            return None;
        }
        self.noise = xorshift(self.noise);
        let u = (self.noise >> 11) as f64 / (1u64 << 53) as f64;
        // ±20 %: 0.8 + 0.4 · u, u uniform in [0, 1).
        let factor = 0.8 + 0.4 * u;
        let computed = self.policy.backoff(self.tries).mul_f64(factor).min(self.policy.max_delay).mul_f64(self.scale);
        // A server's wait is taken as it is (up to a fifth longer, so that transfers throttled
        // together do not come back together) for the first retries: a service that throttles
        // now and then is back when it says, and a file answered 503 three times in a row waits
        // 3 s, not 1 + 2 + 4. It is the earliest moment to come back, not a promise that the next
        // try succeeds: past those retries the budget's own doubling goes on beneath it, so twenty
        // tries still span minutes when a throttled service keeps answering `Retry-After: 1`.
        let wait = match asked {
            Some(a) if self.tries <= AS_ASKED => a.min(MAX_ASKED).mul_f64(1.0 + 0.2 * u).min(MAX_ASKED),
            Some(a) => a.min(MAX_ASKED).max(computed),
            None => computed,
        };
        if let Some(d) = self.policy.deadline
            && self.origin.elapsed() + wait >= d
        {
            return None;
        }
        self.tries += 1;
        Some(wait)
    }
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
    h.finish() | 1
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// The wait a server asks for, from a lookup of its response headers (case-insensitive names):
/// `x-ms-retry-after-ms` and `retry-after-ms` (milliseconds), else `Retry-After` in seconds or
/// as an HTTP date. A wait in the past or of zero still gives the server 50 ms.
pub fn retry_after<'a>(header: impl Fn(&str) -> Option<&'a str>) -> Option<Duration> {
    let floor = Duration::from_millis(50);
    for name in ["x-ms-retry-after-ms", "retry-after-ms"] {
        if let Some(ms) = header(name).and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| v.is_finite() && *v >= 0.0)
        {
            return Some(Duration::from_secs_f64(ms / 1000.0).max(floor));
        }
    }
    let value = header("retry-after")?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs).max(floor));
    }
    let at = http_date(value)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)).max(floor))
}

/// An HTTP date (RFC 9110's IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`) as Unix seconds.
fn http_date(text: &str) -> Option<u64> {
    let mut parts = text.split_whitespace();
    let _weekday = parts.next()?;
    let day: u64 = parts.next()?.parse().ok()?;
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let name = parts.next()?.get(..3)?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(name))? as u64 + 1;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    let (y, mo) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * mo as i64 + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + (h * 3600 + m * 60 + s) as i64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(list: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |name: &str| list.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }

    #[test]
    fn azcopy_budget_is_twenty_tries_doubling_from_one_second_to_a_minute() {
        let p = Policy::AZCOPY;
        assert_eq!(p.backoff(1), Duration::from_secs(1));
        assert_eq!(p.backoff(2), Duration::from_secs(2));
        assert_eq!(p.backoff(6), Duration::from_secs(32));
        assert_eq!(p.backoff(7), Duration::from_secs(60));
        assert_eq!(p.backoff(19), Duration::from_secs(60));
        let mut r = p.start().unscaled();
        let mut waits = Vec::new();
        while let Some(w) = r.next(None) {
            waits.push(w);
        }
        assert_eq!(waits.len(), 19, "20 tries: 19 waits");
        assert!(!r.has_more());
        assert_eq!(r.tries(), 20);
        for (n, w) in waits.iter().enumerate() {
            let base = p.backoff(n as u32 + 1).as_secs_f64();
            let w = w.as_secs_f64();
            assert!(w >= base * 0.8 - 1e-9 && w <= (base * 1.2).min(60.0) + 1e-9, "wait {n}: {w} for {base}");
        }
    }

    #[test]
    fn jitter_spreads_the_waits_of_requests_throttled_together() {
        let waits: std::collections::BTreeSet<u128> =
            (0..16).map(|_| Policy::AZCOPY.start().unscaled().next(None).unwrap().as_micros()).collect();
        assert!(waits.len() > 8, "sixteen first waits, mostly different: {waits:?}");
    }

    #[test]
    fn a_server_asked_wait_is_taken_as_asked_then_the_doubling_goes_on_beneath_it() {
        let mut r = Policy::AZCOPY.start().unscaled();
        let w = r.next(Some(Duration::from_secs(7))).unwrap().as_secs_f64();
        assert!((7.0..=8.4).contains(&w), "7 s beats about 1 s, up to a fifth longer: {w}");
        assert_eq!(r.tries(), 2);
        let mut waits = Vec::new();
        while let Some(w) = r.next(Some(Duration::from_secs(1))) {
            waits.push(w.as_secs_f64());
        }
        // The next retries come back when the service says (where the doubling would say 2, 4
        // and 8 s)...
        for w in &waits[..AS_ASKED as usize - 1] {
            assert!((1.0..=1.2).contains(w), "as asked: {waits:?}");
        }
        // ...then "Retry-After: 1" on every answer: the tries still span minutes, not 19 s.
        let later = waits[AS_ASKED as usize - 1];
        assert!((12.8..=19.2).contains(&later), "the fifth computed wait (16 s ± 20 %): {waits:?}");
        assert!(waits.iter().sum::<f64>() > 600.0, "{waits:?}");
        let mut r = Policy::new(9, Duration::from_millis(10), Duration::from_millis(10)).start();
        let w = r.next(Some(Duration::from_secs(3))).unwrap();
        assert!(w >= Duration::from_secs(3) && w <= Duration::from_millis(3600), "{w:?}");
        assert_eq!(r.next(Some(Duration::from_secs(900))), Some(MAX_ASKED), "an hour-long ask is capped");
        for _ in 0..AS_ASKED {
            r.next(None);
        }
        assert_eq!(r.next(Some(Duration::from_secs(900))), Some(MAX_ASKED), "past the first retries too");
    }

    #[test]
    fn sixteen_transfers_throttled_together_do_not_come_back_together() {
        let waits: std::collections::BTreeSet<u128> = (0..16)
            .map(|_| Policy::AZCOPY.start().unscaled().next(Some(Duration::from_secs(1))).unwrap().as_micros())
            .collect();
        assert!(waits.len() > 8, "sixteen first waits, mostly different: {waits:?}");
        assert!(waits.iter().all(|w| (1_000_000..=1_200_000).contains(w)), "{waits:?}");
    }

    #[test]
    fn no_wait_begins_that_would_end_past_the_deadline() {
        let p = Policy::new(20, Duration::from_secs(1), Duration::from_secs(60)).with_deadline(Duration::from_secs(5));
        let mut r = p.start();
        assert!(r.next(Some(Duration::from_secs(2))).is_some());
        assert_eq!(r.next(Some(Duration::from_secs(10))), None, "a 10 s wait cannot end within 5 s");
        assert!(!r.expired());
        let gone = p.start_at(Instant::now() - Duration::from_secs(6));
        assert!(gone.expired());
    }

    #[test]
    fn one_try_means_no_retry() {
        assert_eq!(Policy::new(1, Duration::from_secs(1), Duration::from_secs(1)).start().next(None), None);
    }

    #[test]
    fn retry_after_reads_milliseconds_seconds_and_http_dates() {
        assert_eq!(retry_after(headers(&[("x-ms-retry-after-ms", "1500")])), Some(Duration::from_millis(1500)));
        assert_eq!(retry_after(headers(&[("Retry-After-Ms", "20")])), Some(Duration::from_millis(50)), "floored");
        assert_eq!(retry_after(headers(&[("Retry-After", "3")])), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after(headers(&[("Retry-After", "3"), ("x-ms-retry-after-ms", "250")])),
            Some(Duration::from_millis(250)),
            "the precise header wins"
        );
        assert_eq!(retry_after(headers(&[("Retry-After", "soon")])), None);
        assert_eq!(retry_after(headers(&[])), None);
        let past = retry_after(headers(&[("Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT")]));
        assert_eq!(past, Some(Duration::from_millis(50)));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let later = format_http_date(now + 30);
        let w = retry_after(headers(&[("Retry-After", later.as_str())])).unwrap();
        assert!((28..=30).contains(&w.as_secs()), "{later}: {w:?}");
    }

    #[test]
    fn http_dates_are_read_as_rfc_9110_writes_them() {
        assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(http_date("Thu, 29 Feb 2024 00:00:00 GMT"), Some(1_709_164_800));
        assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 CET"), None);
        assert_eq!(http_date("Sunday"), None);
    }

    #[test]
    fn only_passing_troubles_are_retried() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 412, 501, 505] {
            assert!(!retryable_status(s), "{s}");
        }
        assert!(idempotent("get") && idempotent("PUT") && idempotent("DELETE"));
        assert!(!idempotent("POST") && !idempotent("PATCH"));
    }

    /// The IMF-fixdate of Unix seconds (test only: the client never writes dates).
    fn format_http_date(secs: u64) -> String {
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        // Civil date from days (Hinnant).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        format!(
            "Mon, {d:02} {} {y} {:02}:{:02}:{:02} GMT",
            MONTHS[(m - 1) as usize],
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }
}
