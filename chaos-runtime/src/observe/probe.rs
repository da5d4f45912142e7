//! Steady-state probes that run in the background while faults are active: `always` (the
//! condition must hold at every state the watch sees, from the first complete list until the
//! probe is finished) and `eventually` (it must hold at some point before then).

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

use crate::conditions::ListCondition;
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
    start(Kind::Always, api, config, what.into(), condition)
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
    start(Kind::Eventually, api, config, what.into(), condition)
}

fn start<K>(
    kind: Kind,
    api: Api<K>,
    config: watcher::Config,
    what: String,
    mut condition: impl ListCondition<K>,
) -> Probe
where
    K: Resource + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
{
    let started = Instant::now();
    let (report, seen) = watch::channel(Seen::default());
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
                        seen.broke = Some((started.elapsed(), Timestamp::now(), saw));
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
    }
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
        if let Some(timeline) = &self.timeline {
            match &verdict {
                Ok(()) => timeline.record(EntryKind::Probe, format!("probe `{}` held", self.what)),
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
            ) => fail(format!(
                "always-probe `{}` broke {} after it started (at {at}); it saw: {saw}",
                self.what,
                humantime::format_duration(round(after))
            )),
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
