//! Where `#[chaos_test]` functions register themselves: a link-time slice, no life before main.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::Cluster;

/// The future a registered test returns once its body is wrapped.
pub type TestFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'static>>;

/// One `#[chaos_test]` function, as the attribute wrote it down (already validated at compile time).
pub struct TestRegistration {
    /// The function's name.
    pub name: &'static str,
    /// `module_path!()` where the function stands.
    pub module_path: &'static str,
    /// `file!()` where the function stands.
    pub file: &'static str,
    /// `line!()` of the function.
    pub line: u32,
    /// Control-plane nodes.
    pub masters: u32,
    /// Worker nodes.
    pub workers: u32,
    /// Control-plane versions: one entry, or several for a version matrix.
    pub k8s: &'static [&'static str],
    /// `master_versions` as written (empty: all at `k8s`).
    pub master_versions: &'static [&'static str],
    /// `worker_versions` as written (empty: all at `k8s`).
    pub worker_versions: &'static [&'static str],
    /// `None`: the harness default.
    pub timeout: Option<Duration>,
    /// `Some(reason)` for `ignore` (the reason is empty when none was given).
    pub ignore: Option<&'static str>,
    /// Runs the test's body on a cluster.
    pub run: fn(Cluster) -> TestFuture,
    /// `retries = N`: how many times a failed test runs again; `None`: `CHAOS_RETRIES`.
    pub retries: Option<u32>,
}

/// Every `#[chaos_test]` in the binary, collected at link time.
#[linkme::distributed_slice]
pub static TESTS: [TestRegistration];

/// What a test body may return: `()` or `Result<(), E>` for any error a `Box<dyn Error + Send +
/// Sync>` can hold: `anyhow::Error`, any `std::error::Error`, a boxed one, or a `String`.
pub trait IntoTestResult {
    /// The outcome as the harness judges it.
    fn into_test_result(self) -> anyhow::Result<()>;
}

impl IntoTestResult for () {
    fn into_test_result(self) -> anyhow::Result<()> {
        Ok(())
    }
}

impl<E> IntoTestResult for Result<(), E>
where
    E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
{
    fn into_test_result(self) -> anyhow::Result<()> {
        // Through a box, the error keeps its message and its chain of causes.
        self.map_err(|err| anyhow::Error::from_boxed(err.into()))
    }
}
