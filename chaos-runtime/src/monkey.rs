//! The chaos monkey: for a while, in the background, hurts random nodes and brings them back, on
//! a schedule drawn up front from the test's seed, so that the same `CHAOS_SEED` gives the same
//! schedule. The schedule is written in the timeline before the first fault.

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use tokio::task::JoinHandle;

use crate::Cluster;
use crate::cluster::Node;
use crate::faults::NodeFault;
use crate::timeline::{EntryKind, Timeline};

/// The old name of [`NodeFault`], which the monkey now takes: every node fault but a partition.
#[deprecated(note = "use `NodeFault`, the one type for every node fault")]
pub type MonkeyFault = NodeFault;

/// How the monkey behaves. The default: for 20 s, every 1 to 3 s, kill a random worker and bring
/// it back after 2 to 4 s; one node down at a time.
#[derive(Clone, Debug)]
pub struct MonkeyPlan {
    /// How long the monkey works; its last fault ends before then.
    pub duration: Duration,
    /// The pause before each fault.
    pub every: RangeInclusive<Duration>,
    /// How long each fault lasts.
    pub down_for: RangeInclusive<Duration>,
    /// What to do to each node it picks: any node fault but a partition, which names its own
    /// sides.
    pub faults: Vec<NodeFault>,
    /// `true`: control planes may be hit too (only sensible with several).
    pub include_control_planes: bool,
}

impl Default for MonkeyPlan {
    fn default() -> Self {
        MonkeyPlan {
            duration: Duration::from_secs(20),
            every: Duration::from_secs(1)..=Duration::from_secs(3),
            down_for: Duration::from_secs(2)..=Duration::from_secs(4),
            faults: vec![NodeFault::Kill],
            include_control_planes: false,
        }
    }
}

/// One planned fault: `fault` on `node` at `at` after the monkey starts, for `down_for`.
#[derive(Clone, Debug, PartialEq)]
pub struct MonkeyAction {
    /// When, after the monkey starts.
    pub at: Duration,
    /// Which node.
    pub node: String,
    /// What it does to it.
    pub fault: NodeFault,
    /// How long before the fault is undone.
    pub down_for: Duration,
}

impl fmt::Display for MonkeyAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "+{:.1}s {} {} for {:.1}s",
            self.at.as_secs_f64(),
            self.fault,
            self.node,
            self.down_for.as_secs_f64()
        )
    }
}

impl MonkeyPlan {
    /// The schedule for these nodes and this seed: one fault after another, never overlapping,
    /// each ending before `duration`.
    pub fn schedule(&self, seed: u64, nodes: &[String]) -> Vec<MonkeyAction> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut actions = Vec::new();
        let mut clock = Duration::ZERO;
        if nodes.is_empty() || self.faults.is_empty() {
            return actions;
        }
        loop {
            let at = clock + draw(&mut rng, &self.every);
            let down_for = draw(&mut rng, &self.down_for);
            if at + down_for > self.duration {
                return actions;
            }
            let node = nodes.choose(&mut rng).expect("not empty").clone();
            let fault = self.faults.choose(&mut rng).expect("not empty").clone();
            actions.push(MonkeyAction {
                at,
                node,
                fault,
                down_for,
            });
            clock = at + down_for;
        }
    }
}

fn draw(rng: &mut StdRng, range: &RangeInclusive<Duration>) -> Duration {
    let (low, high) = (
        range.start().as_millis() as u64,
        range.end().as_millis() as u64,
    );
    Duration::from_millis(if low >= high {
        low
    } else {
        rng.random_range(low..=high)
    })
}

/// A monkey at work; [`Monkey::finish`] waits for its schedule to end.
pub struct Monkey {
    schedule: Vec<MonkeyAction>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Monkey {
    /// The faults it makes, in order, drawn up front from the test's seed.
    pub fn schedule(&self) -> &[MonkeyAction] {
        &self.schedule
    }

    /// Waits until the monkey's last fault is undone; `Err` if a fault could not be made or undone.
    pub async fn finish(mut self) -> anyhow::Result<()> {
        let task = self.task.take().expect("finish runs once");
        task.await
            .map_err(|err| anyhow::anyhow!("the monkey stopped: {err}"))?
    }
}

impl Drop for Monkey {
    fn drop(&mut self) {
        // Dropped before its end: stop; the faults' handles (or the heal) undo what is left.
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Cluster {
    /// Starts a chaos monkey on this cluster (see [`MonkeyPlan`]), its schedule drawn from this
    /// test's seed.
    pub fn monkey(&self, plan: MonkeyPlan) -> Monkey {
        let targets: Vec<Node> = self
            .nodes()
            .iter()
            .filter(|n| plan.include_control_planes || n.role() == chaos_topology::Role::Worker)
            .cloned()
            .collect();
        let names: Vec<String> = targets.iter().map(|n| n.name().to_owned()).collect();
        let schedule = plan.schedule(self.seed(), &names);
        let timeline: Arc<Timeline> = self.timeline.clone();
        let lines: Vec<String> = schedule.iter().map(ToString::to_string).collect();
        timeline.record(
            EntryKind::Fault,
            format!(
                "monkey schedule (seed {}): [{}]",
                self.seed(),
                lines.join(", ")
            ),
        );
        let planned = schedule.clone();
        let partition = plan
            .faults
            .iter()
            .any(|f| matches!(f, NodeFault::Partition { .. }));
        let task = tokio::spawn(async move {
            if partition {
                anyhow::bail!(
                    "the monkey hurts one node at a time, and a partition names its own sides: \
                     use NodeFault::Isolate in MonkeyPlan::faults"
                );
            }
            let start = tokio::time::Instant::now();
            for action in planned {
                tokio::time::sleep_until(start + action.at).await;
                let node = targets
                    .iter()
                    .find(|n| n.name() == action.node)
                    .expect("scheduled among targets");
                let fault = node.inject(action.fault).await?;
                tokio::time::sleep(action.down_for).await;
                fault.undo().await?;
            }
            Ok(())
        });
        Monkey {
            schedule,
            task: Some(task),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workers() -> Vec<String> {
        ["w1", "w2", "w3"].map(String::from).to_vec()
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_seed_another() {
        let plan = MonkeyPlan {
            faults: vec![NodeFault::Kill, NodeFault::Pause],
            ..MonkeyPlan::default()
        };
        let a = plan.schedule(42, &workers());
        assert!(a.len() >= 3, "{a:?}");
        assert_eq!(a, plan.schedule(42, &workers()));
        assert_ne!(a, plan.schedule(43, &workers()));
    }

    #[test]
    fn faults_never_overlap_and_keep_to_the_plan() {
        let plan = MonkeyPlan::default();
        let schedule = plan.schedule(7, &workers());
        let mut free_from = Duration::ZERO;
        for action in &schedule {
            assert!(
                plan.every.contains(&(action.at - free_from)),
                "the pause before {action}"
            );
            assert!(plan.down_for.contains(&action.down_for), "{action}");
            free_from = action.at + action.down_for;
        }
        assert!(free_from <= plan.duration, "the last fault ends in time");
    }

    #[test]
    fn nothing_to_hit_means_no_schedule() {
        assert!(MonkeyPlan::default().schedule(1, &[]).is_empty());
    }
}
