//! What the run is doing, on stderr: `chaos:` lines, each written whole (see `output`), and
//! progress while slow things happen, so that a long cluster creation or a long test never looks
//! like a hang.
//!
//! - On a terminal (stderr is a tty, and `CI` is not set): a live display (indicatif), one
//!   spinner per cluster being created and per test running; `chaos:` lines and libtest's lines
//!   are printed above it.
//! - Elsewhere (CI, a log file): every `CHAOS_PROGRESS_EVERY` (default 15s; `0` turns it off),
//!   one plain line while anything is going on:
//!   `chaos: running: [1m1w-k8s1.35] a (12s), [3m3w-k8s1.35] b (3s); creating: cluster X (40s)`.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::harness::output;

/// How often a still-running step reports, where there is no live display.
const EVERY: Duration = Duration::from_secs(10);

/// `CHAOS_PROGRESS_EVERY` when unset: a test or a creation that takes 15 s shows in CI.
pub(crate) const DEFAULT_EVERY: Duration = Duration::from_secs(15);

/// How often the live display's spinners turn.
const SPIN: Duration = Duration::from_millis(250);

/// Writes `chaos: <line>` to stderr, in one write.
pub(crate) fn say(line: impl AsRef<str>) {
    output::to_stderr(&format!("chaos: {}\n", line.as_ref()));
}

/// Runs `step`, saying `what` with the elapsed seconds every few seconds until it ends (on a
/// terminal with the live display: a spinner instead).
pub(crate) async fn reporting<T>(what: &str, step: impl Future<Output = T>) -> T {
    if live().is_some() {
        let _shown = doing(Doing::Step, what);
        return step.await;
    }
    let start = Instant::now();
    let mut step = std::pin::pin!(step);
    let mut ticker = tokio::time::interval_at((start + EVERY).into(), EVERY);
    loop {
        tokio::select! {
            out = &mut step => return out,
            _ = ticker.tick() => say(format!("{what} ({}s)", start.elapsed().as_secs())),
        }
    }
}

/// What is going on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Doing {
    /// A cluster being created: `cluster NAME [label]`.
    Creating,
    /// A test running: `[label] name`.
    Running,
    /// Any other slow step ([`reporting`]): shown live, and said by its own lines elsewhere.
    Step,
}

struct Activity {
    id: u64,
    doing: Doing,
    what: String,
    since: Instant,
    bar: Option<ProgressBar>,
}

static ACTIVITIES: Mutex<Vec<Activity>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
/// The live display, while a run shows one.
static LIVE: Mutex<Option<MultiProgress>> = Mutex::new(None);

fn live() -> Option<MultiProgress> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Runs `write` with the live display out of the way (cleared, then drawn again below what was
/// written), or simply runs it when there is none.
pub(crate) fn aside(write: impl FnOnce()) {
    match live() {
        Some(display) => display.suspend(write),
        None => write(),
    }
}

/// Something going on until the guard is dropped; shown in the progress.
pub(crate) struct Shown {
    id: u64,
}

/// Shows `what` as going on until the returned guard is dropped.
pub(crate) fn doing(doing: Doing, what: impl Into<String>) -> Shown {
    let what = what.into();
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let bar = live().map(|display| {
        let bar = display.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(match doing {
            Doing::Creating => format!("creating {what}"),
            Doing::Running => format!("running {what}"),
            Doing::Step => what.clone(),
        });
        bar.enable_steady_tick(SPIN);
        bar
    });
    ACTIVITIES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Activity {
            id,
            doing,
            what,
            since: Instant::now(),
            bar,
        });
    Shown { id }
}

impl Drop for Shown {
    fn drop(&mut self) {
        let gone = {
            let mut all = ACTIVITIES.lock().unwrap_or_else(|e| e.into_inner());
            all.iter()
                .position(|a| a.id == self.id)
                .map(|i| all.remove(i))
        };
        if let Some(bar) = gone.and_then(|a| a.bar) {
            bar.finish_and_clear();
        }
    }
}

/// How the run shows its progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Display {
    /// Spinners on the terminal.
    Live,
    /// A plain line this often.
    Lines(Duration),
    /// Nothing but the steps' own lines.
    Off,
}

impl Display {
    /// Live on a terminal outside CI; plain lines elsewhere, unless `every` is zero.
    pub(crate) fn choose(stderr_is_terminal: bool, ci: bool, every: Duration) -> Display {
        match (stderr_is_terminal && !ci, every.is_zero()) {
            (true, _) => Display::Live,
            (false, false) => Display::Lines(every),
            (false, true) => Display::Off,
        }
    }
}

/// Whether this runs in CI: `CI` set to anything but empty, `0` or `false` (GitHub Actions,
/// GitLab CI and most others set `CI=true`: docs.github.com "Store information in variables",
/// default environment variables).
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// Shows progress until the guard is dropped: the live display, or a plain line every `every`
/// on `runtime`.
pub(crate) fn start(every: Duration, runtime: &tokio::runtime::Handle) -> Progress {
    use std::io::IsTerminal as _;
    let display = Display::choose(std::io::stderr().is_terminal(), in_ci(), every);
    let ticker = match display {
        Display::Live => {
            *LIVE.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
            None
        }
        Display::Lines(every) => Some(runtime.spawn(async move {
            let mut ticker = tokio::time::interval_at((Instant::now() + every).into(), every);
            loop {
                ticker.tick().await;
                if let Some(line) = line(Instant::now()) {
                    say(line);
                }
            }
        })),
        Display::Off => None,
    };
    Progress { ticker }
}

/// The progress of a run; dropping it ends the display.
pub(crate) struct Progress {
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(ticker) = &self.ticker {
            ticker.abort();
        }
        if let Some(display) = LIVE.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = display.clear();
        }
    }
}

/// `running: [label] a (12s), [label] b (3s); creating: cluster X [label] (40s)`, or `None` when
/// neither a test runs nor a cluster is being created.
fn line(now: Instant) -> Option<String> {
    let all = ACTIVITIES.lock().unwrap_or_else(|e| e.into_inner());
    let list = |doing: Doing| -> Option<String> {
        let items: Vec<String> = all
            .iter()
            .filter(|a| a.doing == doing)
            .map(|a| format!("{} ({}s)", a.what, now.duration_since(a.since).as_secs()))
            .collect();
        (!items.is_empty()).then(|| items.join(", "))
    };
    let parts: Vec<String> = [("running", Doing::Running), ("creating", Doing::Creating)]
        .into_iter()
        .filter_map(|(name, doing)| list(doing).map(|items| format!("{name}: {items}")))
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_outside_ci_gets_the_live_display_and_ci_gets_lines() {
        let every = Duration::from_secs(15);
        assert_eq!(Display::choose(true, false, every), Display::Live);
        assert_eq!(Display::choose(true, true, every), Display::Lines(every));
        assert_eq!(Display::choose(false, false, every), Display::Lines(every));
        assert_eq!(Display::choose(false, true, Duration::ZERO), Display::Off);
    }

    #[test]
    fn the_plain_line_names_running_tests_and_clusters_being_created_with_their_time() {
        // Activities are global: this test owns the names it looks for.
        let test = doing(Doing::Running, "[1m1w-k8s1.35] progress_unit::slow");
        let cluster = doing(Doing::Creating, "cluster progress-unit [3m3w-k8s1.35]");
        let step = doing(Doing::Step, "still pulling progress-unit-image");
        let later = Instant::now() + Duration::from_secs(12);
        let text = line(later).expect("something is going on");
        assert!(
            text.contains("running: ") && text.contains("[1m1w-k8s1.35] progress_unit::slow (12s)"),
            "{text}"
        );
        assert!(
            text.contains("; creating: ")
                && text.contains("cluster progress-unit [3m3w-k8s1.35] (12s)"),
            "{text}"
        );
        assert!(
            !text.contains("progress-unit-image"),
            "steps say their own lines: {text}"
        );
        drop((test, cluster, step));
        let text = line(later).unwrap_or_default();
        assert!(!text.contains("progress_unit"), "gone once done: {text}");
    }
}
