//! Each test body runs on a thread and a Tokio runtime of its own, apart from the harness's.
//!
//! A body that blocks its thread (`std::thread::sleep`, a blocking call) then only blocks its own
//! runtime: the harness's timers, signals and other tests go on, and the timeout fires on time.
//! When the test ends, its runtime is shut down: the tasks it spawned end with it (a task cannot
//! live on into the next test on the same cluster). A thread still blocked is left to finish on
//! its own; the test's lease (see `crate::lease`) keeps it from acting on the cluster, and the
//! process exits after the summary whatever such threads do.

use std::thread;

use tokio::sync::{mpsc, oneshot};

use crate::harness::panics;
use crate::registry::TestFuture;

/// Threads of a test are named `chaos-test <test name>`, so that a test that calls `exit` can
/// be named (and so they read well in a debugger).
pub(crate) const THREAD_PREFIX: &str = "chaos-test ";

/// Worker threads of a test's runtime: a test that spawns tasks gets some parallelism; one that
/// blocks one thread still has another for its tasks.
const WORKERS: usize = 2;

/// Fails a running test at once, with a message: what runs inside the test (a probe that saw its
/// steady state break) hands the failure to the harness, whose `run_body` stops the body and
/// fails the test with it. Only the first failure counts; after the test ended it does nothing.
#[derive(Clone, Debug)]
pub(crate) struct FailTest(mpsc::UnboundedSender<String>);

impl FailTest {
    /// A `FailTest` and what the harness waits on.
    pub fn channel() -> (FailTest, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (FailTest(tx), rx)
    }

    /// Fails the test with `message`.
    pub fn fail(&self, message: String) {
        let _ = self.0.send(message);
    }
}

/// A test body running on its own thread.
pub(crate) struct RunningTest {
    done: oneshot::Receiver<Result<(), String>>,
    cancel: Option<oneshot::Sender<()>>,
}

/// Starts `body` on a new thread with a runtime of its own. `Err` if the thread or runtime cannot
/// be made (out of threads or memory).
pub(crate) fn start(test: &str, body: TestFuture) -> std::io::Result<RunningTest> {
    let (done_tx, done) = oneshot::channel();
    let (cancel, cancelled) = oneshot::channel::<()>();
    let name = format!("{THREAD_PREFIX}{test}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .thread_name(name.clone())
        .build()?;
    thread::Builder::new().name(name).spawn(move || {
        let outcome = runtime.block_on(async {
            let task = tokio::spawn(panics::as_test(body));
            let (abort, task_id) = (task.abort_handle(), task.id());
            tokio::select! {
                joined = task => Some(match joined {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(err)) => Err(error_report(&err)),
                    Err(join) if join.is_panic() => Err(panics::take_report(task_id)
                        .unwrap_or_else(|| format!("test panicked: {}", panic_message(join.into_panic())))),
                    Err(join) => Err(format!("test was cancelled: {join}")),
                }),
                _ = cancelled => {
                    abort.abort();
                    None
                }
            }
        });
        // Whatever the body spawned ends now; a worker still blocked finishes on its own.
        runtime.shutdown_background();
        if let Some(outcome) = outcome {
            let _ = done_tx.send(outcome);
        }
    })?;
    Ok(RunningTest {
        done,
        cancel: Some(cancel),
    })
}

impl RunningTest {
    /// The body's outcome: `Err` is the failure, said in full.
    pub async fn finished(&mut self) -> Result<(), String> {
        match (&mut self.done).await {
            Ok(outcome) => outcome,
            Err(_) => Err("the test's thread ended without an outcome".to_owned()),
        }
    }

    /// Stops the body where it awaits, and shuts its runtime down. A thread blocked in the body
    /// stays blocked until its call returns.
    pub fn cancel(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            let _ = cancel.send(());
        }
    }
}

impl Drop for RunningTest {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// The error and its causes, one per line, as `anyhow` prints them with `{:#}` but readable.
fn error_report(err: &anyhow::Error) -> String {
    let mut report = err.to_string();
    let causes: Vec<String> = err.chain().skip(1).map(|c| format!("  {c}")).collect();
    if !causes.is_empty() {
        report.push_str("\n\nCaused by:\n");
        report.push_str(&causes.join("\n"));
    }
    report
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(text) => (*text).to_owned(),
            Err(_) => "a panic with a non-text payload".to_owned(),
        },
    }
}
