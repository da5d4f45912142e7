//! How a run ends early. A signal (SIGINT, SIGTERM, SIGHUP) stops the run in order: nothing new
//! starts, what runs is stopped, clusters are torn down (or kept, with `CHAOS_KEEP`), and the run
//! exits 128 + the signal's number. A second signal exits at once, saying what is left. A test
//! that calls `std::process::exit` cannot end the run green: the exit is turned into a failure,
//! after teardown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::harness::pool::Pool;
use crate::harness::progress::say;

/// The signal that stopped the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interrupt {
    Int,
    Term,
    Hup,
    /// Something in the binary called `exit` mid-run.
    Exit,
}

impl Interrupt {
    pub fn name(self) -> &'static str {
        match self {
            Interrupt::Int => "SIGINT",
            Interrupt::Term => "SIGTERM",
            Interrupt::Hup => "SIGHUP",
            Interrupt::Exit => "a call to exit",
        }
    }

    /// 128 + the signal's number, as a shell reports a process the signal ended; 101 (a failed
    /// run) for an exit.
    pub fn exit_code(self) -> u8 {
        match self {
            Interrupt::Hup => 128 + 1,
            Interrupt::Int => 128 + 2,
            Interrupt::Term => 128 + 15,
            Interrupt::Exit => 101,
        }
    }
}

/// Whether the run was told to stop, shared by the scheduler's tasks.
#[derive(Clone)]
pub(crate) struct Stop(Arc<watch::Sender<Option<Interrupt>>>);

impl Stop {
    pub fn new() -> Stop {
        Stop(Arc::new(watch::Sender::new(None)))
    }

    /// The first interrupt wins; later ones change nothing.
    pub fn trigger(&self, interrupt: Interrupt) {
        self.0.send_if_modified(|current| {
            let first = current.is_none();
            current.get_or_insert(interrupt);
            first
        });
    }

    pub fn interrupted(&self) -> Option<Interrupt> {
        *self.0.borrow()
    }

    /// Resolves once the run is told to stop.
    pub async fn wait(&self) -> Interrupt {
        let mut changes = self.0.subscribe();
        let seen = changes.wait_for(Option::is_some).await.map(|seen| *seen);
        match seen {
            Ok(Some(interrupt)) => interrupt,
            // The sender lives in `self`: it cannot close while we wait.
            _ => std::future::pending().await,
        }
    }
}

/// Listens for SIGINT, SIGTERM and SIGHUP for the whole run. The first stops the run; the second
/// exits at once, naming what is left and how to remove it.
pub(crate) async fn listen_for_signals(stop: Stop, pool: Arc<Pool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        say(
            "could not listen for signals: an interrupted run may leave clusters to `cargo chaos gc`",
        );
        return;
    };
    let mut next = async || {
        tokio::select! {
            _ = int.recv() => Interrupt::Int,
            _ = term.recv() => Interrupt::Term,
            _ = hup.recv() => Interrupt::Hup,
        }
    };
    let first = next().await;
    say(format!(
        "{}: starting nothing new, stopping what runs, then removing the clusters \
         (send it again to exit at once)",
        first.name()
    ));
    stop.trigger(first);
    let second = next().await;
    let left = pool.left_behind();
    let left = match left.is_empty() {
        true => "nothing".to_owned(),
        false => format!(
            "cluster(s) {}: `cargo chaos gc` removes them",
            left.join(", ")
        ),
    };
    say(format!(
        "{} again: exiting now; left behind: {left}",
        second.name()
    ));
    exit_now(first.exit_code());
}

/// What the exit hook needs to stop the run when something calls `exit` mid-run.
struct ExitGuard {
    stop: Stop,
    /// Set when the harness itself ends the process, or when the hook took over.
    concluded: AtomicBool,
    /// Set by the hook: the harness's main thread hands over to it once the summary is out.
    taken_over: AtomicBool,
    handed_over: (Mutex<bool>, Condvar),
}

static GUARD: OnceLock<ExitGuard> = OnceLock::new();

/// From now until [`conclude`], a call to `exit` that is not the harness's own (a test's
/// `std::process::exit(0)`, a library's) stops the run as a signal would, then ends it with 101.
pub(crate) fn guard_exit(stop: Stop) {
    let installed = GUARD.set(ExitGuard {
        stop,
        concluded: AtomicBool::new(false),
        taken_over: AtomicBool::new(false),
        handed_over: (Mutex::new(false), Condvar::new()),
    });
    if installed.is_ok() {
        // SAFETY: `on_exit` is an `extern "C" fn()` that lives as long as the program.
        unsafe { libc::atexit(on_exit) };
    }
}

/// Called by the harness's main thread once the summary is out, before it returns. If a test
/// called `exit`, the hook ends the process (with 101) and this never returns.
pub(crate) fn conclude() {
    let Some(guard) = GUARD.get() else { return };
    if !guard.concluded.swap(true, Ordering::SeqCst) {
        return;
    }
    if guard.taken_over.load(Ordering::SeqCst) {
        let (done, ready) = &guard.handed_over;
        *done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        ready.notify_all();
        loop {
            std::thread::park();
        }
    }
}

/// Exits with `code` at once, whatever runs and whatever hooks are set: for the second signal.
pub(crate) fn exit_now(code: u8) -> ! {
    use std::io::Write as _;
    super::output::stop_relay();
    let _ = std::io::stdout().flush();
    // SAFETY: ends the process; nothing of ours needs to run after this.
    unsafe { libc::_exit(i32::from(code)) }
}

/// The `atexit` hook: libc runs it in the thread that called `exit`, before the process ends.
extern "C" fn on_exit() {
    let Some(guard) = GUARD.get() else { return };
    // Test bodies never run on the main thread: an exit there is the harness's own, also one
    // that unwinds out of `run` after a panic (which must not wait for a hand-over).
    if std::thread::current().name() == Some("main") {
        guard.concluded.store(true, Ordering::SeqCst);
        return;
    }
    if guard.concluded.swap(true, Ordering::SeqCst) {
        return; // The harness's own exit.
    }
    guard.taken_over.store(true, Ordering::SeqCst);
    let caller = std::thread::current()
        .name()
        .and_then(|n| n.strip_prefix(super::test_thread::THREAD_PREFIX))
        .map(|test| format!("test `{test}`"))
        .unwrap_or_else(|| "code in the test binary".to_owned());
    say(format!(
        "{caller} called `exit` (std::process::exit?) before the run ended: the run stops and \
         fails (exit code 101). A test ends by returning or panicking, never by exiting"
    ));
    guard.stop.trigger(Interrupt::Exit);
    // The harness's main thread stops the run as on a signal, prints the summary, then hands
    // over. Bounded: teardown has its own limits, this is the last resort.
    let (done, ready) = &guard.handed_over;
    let waited = ready.wait_timeout_while(
        done.lock().unwrap_or_else(|e| e.into_inner()),
        Duration::from_secs(600),
        |done| !*done,
    );
    if waited.is_ok_and(|(_, timeout)| timeout.timed_out()) {
        say(
            "the run did not end within 10 minutes of the exit: `cargo chaos gc` removes what is left",
        );
    }
    exit_now(101)
}
