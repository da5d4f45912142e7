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
    pub file: &'static str,
    pub line: u32,
    pub masters: u32,
    pub workers: u32,
    /// Control-plane versions: one entry, or several for a version matrix.
    pub k8s: &'static [&'static str],
    pub master_versions: &'static [&'static str],
    pub worker_versions: &'static [&'static str],
    /// `None`: the harness default.
    pub timeout: Option<Duration>,
    /// `Some(reason)` for `ignore` (the reason is empty when none was given).
    pub ignore: Option<&'static str>,
    pub run: fn(Cluster) -> TestFuture,
}

#[linkme::distributed_slice]
pub static TESTS: [TestRegistration];

/// What a test body may return: `()` or `Result<(), E>` for any error a `Box<dyn Error + Send +
/// Sync>` can hold: `anyhow::Error`, any `std::error::Error`, a boxed one, or a `String`.
pub trait IntoTestResult {
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
