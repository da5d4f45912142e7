//! Steady-state probes that run in the background while faults are active: `always` (the
//! condition must hold at every state the watch sees, from the first complete list until the
//! probe is finished) and `eventually` (it must hold at some point before then).
//!
//! A probe a test's cluster started records its break in the test's timeline the moment it sees
//! it, with what it saw, and (unless told otherwise, [`Probe::fail_test_at_break`]) fails the test
//! right then: the harness stops the test's body, so the test does not run on to `finish()`
//! while its faults are undone.

use std::fmt;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::watcher;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::conditions::ListCondition;
use crate::harness::test_thread::FailTest;
use crate::timeline::{EntryKind, Timeline};
use crate::wait;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Always,
    Eventually,
}

/// What a probe has seen so far.
#[derive(Clone, Debug, Default)]
struct Seen {
    /// States evaluated (complete lists and changes after them).
    states: u64,
    /// `always`: when it first broke, and what was seen then.
    broke: Option<(Duration, Timestamp, String)>,
    /// `eventually`: when it first held.
    held: Option<Duration>,
    last: String,
}

/// A probe running in the background; [`Probe::finish`] stops it and gives its verdict. Dropping
/// it stops it without a verdict.
pub struct Probe {
    kind: Kind,
    what: String,
    started: Instant,
    seen: watch::Receiver<Seen>,
    task: JoinHandle<()>,
    /// Where its start and verdict are recorded, for probes a test's cluster started.
    timeline: Option<Arc<Timeline>>,
    /// What the probe does the moment it breaks.
    at_break: Arc<AtBreak>,
}

/// What an `always` probe does the moment it sees its condition broken, besides keeping it for
/// its verdict: record it in the test's timeline, and fail the test at once.
#[derive(Default)]
pub(crate) struct AtBreak {
    /// The test's timeline: the break is recorded there when seen.
    pub timeline: Option<Arc<Timeline>>,
    /// The test to fail when the probe breaks (while `fail_test` holds).
    pub test: Option<FailTest>,
    /// Whether to fail the test at the break; [`Probe::fail_test_at_break`] sets it.
    pub fail_test: AtomicBool,
}

/// A probe whose condition did not hold as it should have.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ProbeFailure {
    /// What the probe checked, how it failed and what it saw.
    pub message: String,
}

/// Starts checking that `condition` holds for the objects `config` selects at every state the
/// watch sees, until [`Probe::finish`].
pub fn always<K>(
    api: Api<K>,
    config: watcher::Config,
    what: impl Into<String>,
    condition: impl ListCondition<K>,
) -> Probe
where
    K: Resource + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
{
    start(
        Kind::Always,
        api,
        config,
        what.into(),
        condition,
        Default::default(),
    )
}

/// Starts checking that `condition` holds at some point before [`Probe::finish`].
pub fn eventually<K>(
    api: Api<K>,
    config: watcher::Config,
    what: impl Into<String>,
    condition: impl ListCondition<K>,
) -> Probe
where
    K: Resource + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
{
    start(
        Kind::Eventually,
        api,
        config,
        what.into(),
        condition,
        Default::default(),
    )
}

/// Starts an `always` probe of a test: its break is recorded in `at_break`'s timeline when it is
/// seen, and fails the test then (see [`AtBreak`]).
pub(crate) fn always_in_test<K>(
    api: Api<K>,
    config: watcher::Config,
    what: String,
    condition: impl ListCondition<K>,
    at_break: AtBreak,
) -> Probe
where
    K: Resource + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
{
    start(Kind::Always, api, config, what, condition, at_break)
}

fn start<K>(
    kind: Kind,
    api: Api<K>,
    config: watcher::Config,
    what: String,
    mut condition: impl ListCondition<K>,
    at_break: AtBreak,
) -> Probe
where
    K: Resource + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
{
    let started = Instant::now();
    let (report, seen) = watch::channel(Seen::default());
    let at_break = Arc::new(at_break);
    let (hooks, name) = (at_break.clone(), what.clone());
    let task = tokio::spawn(async move {
        let mut states = std::pin::pin!(wait::states(api, config));
        while let Some(state) = states.next().await {
            let current = match state {
                Ok(current) => current,
                Err(err) => {
                    // Not a verdict: while the API cannot be watched, nothing is seen.
                    report.send_modify(|s| s.last = format!("watch error: {err}"));
                    continue;
                }
            };
            let verdict = condition(&current);
            let done = report.send_modify_and_check(|seen| {
                seen.states += 1;
                seen.last = match &verdict {
                    Ok(()) => "the condition held".to_owned(),
                    Err(saw) => saw.clone(),
                };
                match (kind, verdict) {
                    (Kind::Always, Err(saw)) => {
                        let (after, at) = (started.elapsed(), Timestamp::now());
                        // Said now, while the fault that broke it is still there; inside the
                        // update, so that `finish` sees the break only once it is recorded.
                        let message = broke_message(&name, after, at, &saw);
                        if let Some(timeline) = &hooks.timeline {
                            timeline.record(EntryKind::Probe, message.clone());
                        }
                        if let Some(test) = &hooks.test
                            && hooks.fail_test.load(Ordering::SeqCst)
                        {
                            test.fail(format!(
                                "{message}\n\nthe test was stopped at the break (an \
                                 always-probe started on a test's cluster fails the test when \
                                 it breaks; `.fail_test_at_break(false)` on the probe lets the \
                                 test run on to `finish()`)"
                            ));
                        }
                        seen.broke = Some((after, at, saw));
                        true
                    }
                    (Kind::Eventually, Ok(())) => {
                        seen.held = Some(started.elapsed());
                        true
                    }
                    _ => false,
                }
            });
            if done {
                return; // The verdict cannot change any more.
            }
        }
    });
    Probe {
        kind,
        what,
        started,
        seen,
        task,
        timeline: None,
        at_break,
    }
}

/// How an `always` probe's break is said: at the moment, and in its verdict.
fn broke_message(what: &str, after: Duration, at: Timestamp, saw: &str) -> String {
    format!(
        "always-probe `{what}` broke {} after it started (at {at}); it saw: {saw}",
        humantime::format_duration(round(after))
    )
}

/// `send_modify` that also returns what the closure returned.
trait SendModifyAndCheck<T> {
    fn send_modify_and_check(&self, f: impl FnOnce(&mut T) -> bool) -> bool;
}

impl<T> SendModifyAndCheck<T> for watch::Sender<T> {
    fn send_modify_and_check(&self, f: impl FnOnce(&mut T) -> bool) -> bool {
        let mut out = false;
        self.send_modify(|value| out = f(value));
        out
    }
}

impl Probe {
    /// What the probe checks, as given.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Whether the probe fails its test the moment it breaks (`true`, the default for the
    /// `always` probes a test's cluster starts) or only says so at [`Probe::finish`] (`false`: a
    /// test that expects the break, or wants to act on it). No effect on probes that belong to no
    /// test ([`always`] and [`eventually`] of this module), nor on `eventually` probes. Call it
    /// right away: a break seen before it is handled as set before.
    pub fn fail_test_at_break(self, fail: bool) -> Self {
        self.at_break.fail_test.store(fail, Ordering::SeqCst);
        self
    }

    /// Records the probe's start, and later its verdict, in `timeline`.
    pub(crate) fn recorded_in(mut self, timeline: Arc<Timeline>) -> Self {
        let kind = match self.kind {
            Kind::Always => "always",
            Kind::Eventually => "eventually",
        };
        timeline.record(
            EntryKind::Probe,
            format!("{kind}-probe `{}` started", self.what),
        );
        self.timeline = Some(timeline);
        self
    }

    /// Stops the probe and says whether its condition held as it should have. An `always` probe
    /// fails with the moment it broke and what it saw then; one that never saw a complete state
    /// fails too (it proved nothing).
    pub async fn finish(self) -> Result<(), ProbeFailure> {
        let verdict = self.verdict();
        // A break was recorded the moment it was seen.
        let recorded_at_break =
            self.at_break.timeline.is_some() && self.seen.borrow().broke.is_some();
        if let Some(timeline) = &self.timeline {
            match &verdict {
                Ok(()) => timeline.record(EntryKind::Probe, format!("probe `{}` held", self.what)),
                Err(_) if recorded_at_break => {}
                Err(failure) => timeline.record(EntryKind::Probe, failure.message.clone()),
            }
        }
        verdict
    }

    fn verdict(&self) -> Result<(), ProbeFailure> {
        self.task.abort();
        let seen = self.seen.borrow().clone();
        let ran = humantime::format_duration(round(self.started.elapsed()));
        let fail = |message: String| Err(ProbeFailure { message });
        match (self.kind, seen) {
            (
                Kind::Always,
                Seen {
                    broke: Some((after, at, saw)),
                    ..
                },
            ) => fail(broke_message(&self.what, after, at, &saw)),
            (
                _,
                Seen {
                    states: 0, last, ..
                },
            ) => fail(format!(
                "probe `{}` saw no complete state in {ran}, so it proves nothing; last seen: {}",
                self.what,
                if last.is_empty() { "nothing" } else { &last }
            )),
            (Kind::Always, _) => Ok(()),
            (Kind::Eventually, Seen { held: Some(_), .. }) => Ok(()),
            (Kind::Eventually, Seen { last, .. }) => fail(format!(
                "eventually-probe `{}` never held in {ran}; last seen: {last}",
                self.what
            )),
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions;
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{Patch, PatchParams, PostParams};

    async fn web(available: i32) -> Api<Deployment> {
        let api: Api<Deployment> =
            Api::namespaced(chaos_sim::ApiServer::new("v1.35.8").client(), "default");
        let web: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}}
        }))
        .unwrap();
        api.create(&PostParams::default(), &web).await.unwrap();
        set_available(&api, available).await;
        api
    }

    async fn set_available(api: &Api<Deployment>, available: i32) {
        let status = serde_json::json!({"status": {"replicas": 2, "readyReplicas": available,
                                                   "availableReplicas": available}});
        api.patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }

    fn probe_of_a_test(
        api: Api<Deployment>,
    ) -> (Probe, Arc<Timeline>, mpsc::UnboundedReceiver<String>) {
        let timeline = Arc::new(Timeline::default());
        let (test, failed) = FailTest::channel();
        let probe = always_in_test(
            api,
            watcher::Config::default().fields("metadata.name=web"),
            "web keeps 1 available".to_owned(),
            conditions::deployment_available("web", 1),
            AtBreak {
                timeline: Some(timeline.clone()),
                test: Some(test),
                fail_test: true.into(),
            },
        )
        .recorded_in(timeline.clone());
        (probe, timeline, failed)
    }

    use tokio::sync::mpsc;

    #[tokio::test]
    async fn a_break_is_recorded_and_fails_the_test_when_seen_not_at_finish() {
        let api = web(2).await;
        let (probe, timeline, mut failed) = probe_of_a_test(api.clone());
        tokio::time::sleep(Duration::from_millis(300)).await;
        set_available(&api, 0).await;
        let failure = tokio::time::timeout(Duration::from_secs(5), failed.recv())
            .await
            .expect("the test is failed within 5s of the break")
            .expect("a failure");
        assert!(
            failure.starts_with("always-probe `web keeps 1 available` broke "),
            "{failure}"
        );
        assert!(
            failure.contains("it saw: deployment web: 0 available")
                && failure.contains("the test was stopped at the break"),
            "{failure}"
        );
        // In the timeline already, with what it saw, before anyone called `finish`.
        let entries = timeline.entries();
        let broke: Vec<_> = entries
            .iter()
            .filter(|e| e.kind == EntryKind::Probe && e.what.contains(" broke "))
            .collect();
        assert_eq!(broke.len(), 1, "{entries:?}");
        assert!(
            broke[0]
                .what
                .contains("it saw: deployment web: 0 available"),
            "{entries:?}"
        );
        // `finish` still fails, and does not record the break twice.
        assert!(probe.finish().await.is_err());
        let after = timeline.entries();
        assert_eq!(
            after.iter().filter(|e| e.what.contains(" broke ")).count(),
            1,
            "{after:?}"
        );
    }

    #[tokio::test]
    async fn a_probe_told_not_to_fail_its_test_only_records_the_break() {
        let api = web(2).await;
        let (probe, timeline, mut failed) = probe_of_a_test(api.clone());
        let probe = probe.fail_test_at_break(false);
        tokio::time::sleep(Duration::from_millis(300)).await;
        set_available(&api, 0).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(failed.try_recv().is_err(), "the test was not failed");
        assert!(
            timeline
                .entries()
                .iter()
                .any(|e| e.what.contains(" broke ")),
            "{:?}",
            timeline.entries()
        );
        let err = probe.finish().await.unwrap_err().to_string();
        assert!(err.contains("it saw: deployment web: 0 available"), "{err}");
    }
}
