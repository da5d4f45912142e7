//! Panics in test bodies. Tests run in parallel, so the default hook's report (and a backtrace,
//! with `RUST_BACKTRACE`) would land in the middle of other tests' output; instead it becomes part
//! of the failing test's own report. Panics anywhere else keep the default hook.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use tokio::task::Id;

tokio::task_local! {
    /// Set while a test body runs, so the hook knows a panic is a test's.
    static IN_TEST: ();
}

/// Reports of test panics, by the task that panicked, until the scheduler takes them.
static REPORTS: Mutex<BTreeMap<Id, String>> = Mutex::new(BTreeMap::new());

pub(crate) fn install_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let task = tokio::task::try_id().filter(|_| IN_TEST.try_with(|_| ()).is_ok());
        let Some(task) = task else {
            return default(info);
        };
        let payload = info.payload();
        let message = (payload.downcast_ref::<&str>().copied())
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a panic with a non-text payload");
        let mut report = match info.location() {
            Some(at) => format!("test panicked at {at}: {message}"),
            None => format!("test panicked: {message}"),
        };
        let backtrace = Backtrace::capture();
        if backtrace.status() == BacktraceStatus::Captured {
            report.push_str(&format!("\n\nstack backtrace:\n{backtrace}"));
        }
        REPORTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(task, report);
    }));
}

/// Marks `body` as a test body for the hook.
pub(crate) fn as_test<F: Future>(body: F) -> impl Future<Output = F::Output> {
    IN_TEST.scope((), body)
}

/// The report of the panic that ended `task`, if the hook saw it.
pub(crate) fn take_report(task: Id) -> Option<String> {
    REPORTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&task)
}
