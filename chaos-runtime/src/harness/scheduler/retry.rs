//! A test's attempts: `retries = N` (or `CHAOS_RETRIES`) more after a failure, each on a cluster
//! healed as between two tests (or recreated, when it cannot be healed), each with a seed of its
//! own, derived from the test's seed and the attempt's number. A test that passes on a retry is
//! flaky: it passes, and the summary, its timeline and the JUnit report say so. One that fails
//! every attempt fails with each attempt's failure (its first line) and the last one in full.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use chaos_topology::Topology;

use super::{Job, Outcome, Scheduler, TestRun};
use crate::cluster::SharedCluster;
use crate::harness::artifacts;
use crate::harness::junit::{Attempt, Ran};
use crate::harness::progress::say;
use crate::harness::seed::{attempt_seed, test_seed};
use crate::timeline::{self, AttemptEntry, EntryKind, Timeline};

impl TestRun {
    /// Passed on a retry.
    pub(super) fn outcome_is_flaky(&self) -> bool {
        matches!(self.outcome, Outcome::Passed) && self.attempts.iter().any(|a| a.failure.is_some())
    }
}

/// The attempts as the timeline file lists them.
pub(super) fn timeline_attempts(attempts: &[Attempt]) -> Vec<AttemptEntry> {
    (1..)
        .zip(attempts)
        .map(|(attempt, a)| AttemptEntry {
            attempt,
            seed: a.seed,
            outcome: match &a.failure {
                None => "passed".to_owned(),
                Some(failure) => format!("failed: {}", first_line(failure)),
            },
        })
        .collect()
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

impl Scheduler {
    /// Runs `job` until an attempt passes or it has no retries left, and records what it came
    /// to. Between attempts the cluster is healed as between tests; one that cannot be is
    /// recreated (`cluster` is then the new one). The `bool` is false when it could not be
    /// recreated: the group's other `jobs` (`left` with this one) then have their outcomes, and
    /// the group has no cluster left.
    pub(super) async fn run_attempts(
        &self,
        cluster: &mut Arc<SharedCluster>,
        topology: &Topology,
        job: &Job,
        jobs: &mut std::vec::IntoIter<Job>,
        left: usize,
    ) -> (TestRun, bool) {
        let planned = job.retries.saturating_add(1);
        let first_seed = self
            .reproduce
            .test_seed
            .unwrap_or_else(|| test_seed(self.reproduce.run_seed, &job.name));
        let timeline = Arc::new(Timeline::default());
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut namespace = String::new();
        // Why the attempt after the last one could not run, when it could not.
        let mut cut_short: Option<String> = None;
        let mut alive = true;
        for attempt in 1..=planned {
            if let (2.., Some(interrupt)) = (attempt, self.stop.interrupted()) {
                // Stopped while the cluster was healed for this attempt.
                cut_short = Some(format!("the run was stopped by {}", interrupt.name()));
                break;
            }
            let seed = attempt_seed(first_seed, attempt);
            let which = format!("attempt {attempt} of {planned}");
            let named = (planned > 1).then_some(which.as_str());
            let start = Instant::now();
            let (ns, ended) = self.run_test(cluster, job, seed, &timeline, named).await;
            namespace = ns;
            let failure = ended.err();
            attempts.push(Attempt {
                seed,
                failure: failure.clone(),
                time: start.elapsed(),
            });
            let Some(failure) = failure else { break };
            if attempt == planned {
                break;
            }
            timeline.record(
                EntryKind::Test,
                format!("{which} failed: {}", first_line(&failure)),
            );
            if let Some(interrupt) = self.stop.interrupted() {
                // A first attempt stopped says so itself, as without retries.
                if attempt > 1 {
                    cut_short = Some(format!("the run was stopped by {}", interrupt.name()));
                }
                break;
            }
            say(format!(
                "{}: {which} failed (seed {seed}): {}; retrying on a healed cluster",
                job.name,
                first_line(&failure)
            ));
            let next = attempt + 1;
            match self.heal_and_check(cluster, &namespace, &timeline).await {
                Ok(()) => timeline.record(
                    EntryKind::Heal,
                    format!("cluster healed and healthy before attempt {next}"),
                ),
                Err(problem) => {
                    timeline.record(
                        EntryKind::Heal,
                        format!("cluster unhealthy: {problem}; recreating it for attempt {next}"),
                    );
                    say(format!(
                        "cluster {} is unhealthy after {which} of {}: {problem}; recreating it",
                        cluster.name, job.name
                    ));
                    // As `run_group` does: under nextest the run's lease record goes too, or
                    // the next lease would wait for this very process.
                    self.put_back(cluster, false).await;
                    match self.provision_or_report(topology, jobs, left).await {
                        Some(fresh) => {
                            self.pool.counters.recreated.fetch_add(1, Ordering::SeqCst);
                            *cluster = fresh;
                        }
                        None => {
                            alive = false;
                            cut_short = Some(match self.stop.interrupted() {
                                Some(interrupt) => {
                                    format!("the run was stopped by {}", interrupt.name())
                                }
                                None => {
                                    say(format!(
                                        "could not recreate the [{}] cluster",
                                        topology.label()
                                    ));
                                    format!(
                                        "its [{}] cluster could not be recreated",
                                        topology.label()
                                    )
                                }
                            });
                            break;
                        }
                    }
                }
            }
        }
        // Before the heal: events, pods, nodes and logs as the last failure left them.
        let artifacts = match attempts.last().is_some_and(|a| a.failure.is_some()) {
            true => Some(
                artifacts::collect_for(self, cluster, &job.name, &namespace, &timeline)
                    .await
                    .to_string(),
            ),
            false => None,
        };
        let run = self.conclude(
            job, namespace, timeline, attempts, first_seed, planned, cut_short, artifacts,
        );
        self.results.ran(
            &job.name,
            Ran {
                attempts: run.attempts.clone(),
                reproduce: run.reproduce.clone(),
            },
        );
        self.write_timeline(cluster, job, &run);
        (run, alive)
    }

    /// The test's outcome from its attempts, recorded in its timeline.
    #[allow(clippy::too_many_arguments)]
    fn conclude(
        &self,
        job: &Job,
        namespace: String,
        timeline: Arc<Timeline>,
        attempts: Vec<Attempt>,
        first_seed: u64,
        planned: u32,
        cut_short: Option<String>,
        artifacts: Option<String>,
    ) -> TestRun {
        let count = attempts.len();
        let last = attempts.last().expect("a test has at least one attempt");
        let seed = last.seed;
        // The first attempt reproduces as before (with CHAOS_TEST_SEED only if the run had it);
        // a later one by its own seed.
        let reproduce = match count {
            1 => self.reproduce.line(&job.name, self.reproduce.test_seed),
            _ => self.reproduce.line(&job.name, Some(seed)),
        };
        let outcome = match &last.failure {
            None if count == 1 => {
                timeline.record(EntryKind::Test, "passed");
                Outcome::Passed
            }
            None => {
                timeline.record(
                    EntryKind::Test,
                    format!("passed on attempt {count} of {planned} (seed {seed}): flaky"),
                );
                say(format!(
                    "{} passed on attempt {count} of {planned}: flaky",
                    job.name
                ));
                Outcome::Passed
            }
            Some(failure) => {
                let path = timeline::path_for(&job.name);
                let run_seed = self.reproduce.run_seed;
                let (text, seed_line) = match (count, &cut_short) {
                    (1, None) => {
                        timeline
                            .record(EntryKind::Test, format!("failed: {}", first_line(failure)));
                        (failure.clone(), format!("{seed} (run seed {run_seed})"))
                    }
                    _ => {
                        let head = match &cut_short {
                            None => format!("failed all {count} attempts:"),
                            Some(why) => format!(
                                "failed {count} of {planned} attempts, and no more ran: {why}:"
                            ),
                        };
                        timeline.record(EntryKind::Test, head.trim_end_matches(':'));
                        let each: Vec<String> = (1..)
                            .zip(&attempts)
                            .map(|(n, a)| {
                                let failure = a.failure.as_deref().unwrap_or_default();
                                format!("  attempt {n} (seed {}): {}", a.seed, first_line(failure))
                            })
                            .collect();
                        (
                            format!(
                                "{head}\n{}\n\nattempt {count} of {planned} in full:\n{failure}",
                                each.join("\n")
                            ),
                            format!(
                                "{seed} (attempt {count} of {planned}; test seed {first_seed}, \
                                 run seed {run_seed})"
                            ),
                        )
                    }
                };
                let artifacts = artifacts
                    .map(|line| format!("{line}\n"))
                    .unwrap_or_default();
                Outcome::Failed(format!(
                    "{text}\n\n{artifacts}timeline ({}):\n{}\n\nseed: {seed_line}\nreproduce: {reproduce}",
                    path.display(),
                    timeline.render(),
                ))
            }
        };
        TestRun {
            outcome,
            namespace,
            timeline,
            seed,
            attempts,
            reproduce,
        }
    }
}
