//! Runs the selected tests on their clusters, apart from libtest-mimic's worker threads: groups of
//! different topologies run in parallel, each group's tests one after another on its cluster.
//!
//! libtest-mimic hands tests to threads in list order, so a thread that takes the second test of
//! a busy cluster would sit idle while other clusters wait. Instead each trial only waits for the
//! outcome this scheduler sends it.

use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use chaos_topology::Topology;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cluster::{Cluster, SharedCluster};
use crate::harness::ending::{Interrupt, Stop};
use crate::harness::pool::Pool;
use crate::harness::progress::{self, say};
use crate::harness::seed::test_seed;
use crate::harness::test_thread;
use crate::lease::Lease;
use crate::namespace;
use crate::observe::baseline::Baseline;
use crate::observe::health;
use crate::registry::TestFuture;
use crate::timeline::{self, EntryKind, Timeline, TimelineFile};

/// A test's result as libtest-mimic reports it.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    Passed,
    /// The whole failure message.
    Failed(String),
    /// The run stopped before the test started: reported ignored, with the reason.
    NotRun(String),
}

/// One selected test, with the channel its trial waits on.
pub(crate) struct Job {
    pub name: String,
    pub timeout: Duration,
    pub run: fn(Cluster) -> TestFuture,
    pub outcome: Sender<Outcome>,
}

pub(crate) struct GroupJob {
    pub topology: Topology,
    pub jobs: Vec<Job>,
}

/// One test's run: what libtest is told, and what the heal and the timeline file need.
struct TestRun {
    outcome: Outcome,
    namespace: String,
    timeline: Arc<Timeline>,
    seed: u64,
}

/// What a failure message needs to say how to rerun the test alone.
pub(crate) struct Reproduce {
    pub run_seed: u64,
    pub provider: &'static str,
    /// e.g. `cargo test --test chaos --`
    pub command: String,
}

pub(crate) struct Scheduler {
    pub pool: Arc<Pool>,
    /// Clusters outlive the run: `CHAOS_KEEP=1`, or a provider that reuses them.
    pub keep_clusters: bool,
    pub reproduce: Reproduce,
    /// Set on a signal (or a test's `exit`): nothing new starts.
    pub stop: Stop,
}

/// The reason a job never ran, for its trial.
fn not_run(interrupt: Interrupt) -> Outcome {
    Outcome::NotRun(format!(
        "not run: the run was stopped by {}",
        interrupt.name()
    ))
}

impl Scheduler {
    /// Runs every group: at most `cluster_slots` clusters alive and `test_slots` tests running.
    /// Returns once every cluster it made is torn down (or kept, with `CHAOS_KEEP`).
    pub async fn run(
        self: Arc<Self>,
        groups: Vec<GroupJob>,
        cluster_slots: usize,
        test_slots: usize,
    ) {
        let clusters = Arc::new(Semaphore::new(cluster_slots));
        let tests = Arc::new(Semaphore::new(test_slots));
        let mut running = JoinSet::new();
        for group in groups {
            // Taken in order, so the largest groups get their clusters first.
            let slot = tokio::select! {
                slot = clusters.clone().acquire_owned() => slot.ok(),
                _ = self.stop.wait() => None,
            };
            let Some(slot) = slot else {
                let interrupt = self.stop.interrupted().unwrap_or(Interrupt::Int);
                for job in group.jobs {
                    let _ = job.outcome.send(not_run(interrupt));
                }
                continue;
            };
            let (this, tests) = (self.clone(), tests.clone());
            running.spawn(async move {
                this.run_group(group, tests).await;
                drop(slot);
            });
        }
        while let Some(done) = running.join_next().await {
            if let Err(err) = done {
                say(format!(
                    "internal error in the harness (a cluster group stopped): {err}"
                ));
            }
        }
    }

    async fn run_group(&self, group: GroupJob, test_slots: Arc<Semaphore>) {
        let label = group.topology.label();
        let count = group.jobs.len();
        let mut jobs = group.jobs.into_iter();
        let Some(mut cluster) = self
            .provision_or_report(&group.topology, &mut jobs, count)
            .await
        else {
            return;
        };
        // One slot for the whole group: its tests keep their order on its cluster.
        let slot = tokio::select! {
            slot = test_slots.acquire_owned() => slot.ok(),
            _ = self.stop.wait() => None,
        };
        let _slot = slot;
        let mut index = 0;
        while let Some(job) = jobs.next() {
            index += 1;
            if let Some(interrupt) = self.stop.interrupted() {
                let _ = job.outcome.send(not_run(interrupt));
                continue;
            }
            let run = self.run_test(&cluster, &job).await;
            let _ = job.outcome.send(run.outcome.clone());
            let last = index == count || self.stop.interrupted().is_some();
            if last && !self.keep_clusters {
                break; // The cluster goes away next: nothing to heal it for.
            }
            let healed = self
                .heal_and_check(&cluster, &run.namespace, &run.timeline)
                .await;
            match &healed {
                Ok(()) => run
                    .timeline
                    .record(EntryKind::Heal, "cluster healed and healthy"),
                Err(problem) => run
                    .timeline
                    .record(EntryKind::Heal, format!("cluster unhealthy: {problem}")),
            }
            self.write_timeline(&cluster, &job, &run);
            let Err(problem) = healed else { continue };
            if last {
                // Kept (CHAOS_KEEP, CHAOS_REUSE) only if healthy: a broken one is not worth
                // adopting, and says why.
                say(format!(
                    "cluster {} is unhealthy after {}: {problem}; removing it rather than keeping it",
                    cluster.name, job.name
                ));
                self.pool.destroy(&cluster).await;
                return;
            }
            say(format!(
                "cluster {} is unhealthy after {}: {problem}; recreating it",
                cluster.name, job.name
            ));
            self.pool.destroy(&cluster).await;
            let left = count - index;
            match self
                .provision_or_report(&group.topology, &mut jobs, left)
                .await
            {
                Some(fresh) => {
                    self.pool
                        .counters
                        .recreated
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    cluster = fresh;
                }
                None => {
                    say(format!("could not recreate the [{label}] cluster"));
                    return;
                }
            }
        }
        if let Some(interrupt) = self.stop.interrupted() {
            jobs.for_each(|job| drop(job.outcome.send(not_run(interrupt))));
        }
        if self.keep_clusters {
            say(format!(
                "keeping cluster {} (CHAOS_KEEP=1 or CHAOS_REUSE=1)",
                cluster.name
            ));
        } else {
            self.pool.destroy(&cluster).await;
        }
    }

    /// A cluster for the group's remaining `jobs`, or `None` once each of them has its outcome
    /// (the cluster could not be made, or the run was stopped while it was being made).
    async fn provision_or_report(
        &self,
        topology: &Topology,
        jobs: &mut std::vec::IntoIter<Job>,
        tests: usize,
    ) -> Option<Arc<SharedCluster>> {
        let label = topology.label();
        let name = self.pool.provider.cluster_name(topology);
        if let Some(interrupt) = self.stop.interrupted() {
            jobs.for_each(|job| drop(job.outcome.send(not_run(interrupt))));
            return None;
        }
        self.pool.creating(&name);
        let made = tokio::select! {
            made = self.provision(&name, topology, tests) => made,
            interrupt = self.stop.wait() => {
                // The creation's future is dropped here (kind's process is killed with it);
                // then whatever it made goes.
                say(format!("{}: stopping the creation of cluster {name}", interrupt.name()));
                self.pool.discard(&name).await;
                jobs.for_each(|job| drop(job.outcome.send(not_run(interrupt))));
                return None;
            }
        };
        self.pool.created(&name);
        match made {
            Ok(cluster) => Some(cluster),
            Err(err) => {
                for job in jobs {
                    let _ = job.outcome.send(Outcome::Failed(format!(
                        "the [{label}] cluster could not be created: {err:#}"
                    )));
                }
                None
            }
        }
    }

    async fn provision(
        &self,
        name: &str,
        topology: &Topology,
        tests: usize,
    ) -> anyhow::Result<Arc<SharedCluster>> {
        let name = name.to_owned();
        let provider = &self.pool.provider;
        say(format!(
            "creating cluster {name} [{}] on {} for {tests} test(s)",
            topology.label(),
            provider.name()
        ));
        let start = Instant::now();
        let _shown = progress::doing(
            progress::Doing::Creating,
            format!("cluster {name} [{}]", topology.label()),
        );
        let provisioned = provider.create(&name, topology).await?;
        let baseline = match Baseline::take(&provisioned.client).await {
            Ok(baseline) => baseline,
            Err(err) => {
                // Made, but not fit to hand out: it goes, as a failed creation's would.
                if let Err(gone) = provider.destroy(&provisioned).await {
                    say(format!("could not remove cluster {name}: {gone:#}"));
                }
                return Err(
                    err.context(format!("cluster {name} was created but could not be read"))
                );
            }
        };
        let cluster = Arc::new(SharedCluster {
            name,
            topology: topology.clone(),
            provisioned,
            ledger: Default::default(),
            baseline,
        });
        self.pool.add(cluster.clone());
        let how = if cluster.provisioned.reused {
            "reused, healthy"
        } else {
            "ready"
        };
        say(format!(
            "cluster {} {how} after {:.1}s",
            cluster.name,
            start.elapsed().as_secs_f64()
        ));
        Ok(cluster)
    }

    /// Runs one test in its own namespace and task, so that a panic or a timeout fails the test
    /// and nothing else. Its timeline is written before the outcome is handed on.
    async fn run_test(&self, shared: &Arc<SharedCluster>, job: &Job) -> TestRun {
        let seed = test_seed(self.reproduce.run_seed, &job.name);
        let namespace = namespace::name_for(&job.name, seed);
        let timeline = Arc::new(Timeline::default());
        timeline.record(
            EntryKind::Test,
            format!(
                "started on cluster {} in namespace {namespace}, seed {seed}",
                shared.name
            ),
        );
        let failure = match namespace::create(shared.provisioned.client.clone(), &namespace).await {
            Err(err) => Some(format!(
                "could not create the test's namespace {namespace}: {err:#}"
            )),
            Ok(()) => {
                let lease = Lease::new(&job.name);
                let cluster = Cluster::for_test(
                    shared.clone(),
                    namespace.clone(),
                    seed,
                    timeline.clone(),
                    lease.clone(),
                );
                let ended = self.run_body(cluster, job).await;
                // From here on, nothing the test left running acts on the cluster.
                lease.end();
                ended.err()
            }
        };
        let outcome = match failure {
            None => {
                timeline.record(EntryKind::Test, "passed");
                Outcome::Passed
            }
            Some(failure) => {
                timeline.record(
                    EntryKind::Test,
                    format!("failed: {}", failure.lines().next().unwrap_or_default()),
                );
                let path = timeline::path_for(&job.name);
                Outcome::Failed(format!(
                    "{failure}\n\ntimeline ({}):\n{}\n\nseed: {seed} (run seed {run})\nreproduce: {reproduce}",
                    path.display(),
                    timeline.render(),
                    run = self.reproduce.run_seed,
                    reproduce = self.reproduce_line(&job.name),
                ))
            }
        };
        let run = TestRun {
            outcome,
            namespace,
            timeline,
            seed,
        };
        self.write_timeline(shared, job, &run);
        run
    }

    /// The test body on its own thread and runtime, until it ends, its timeout passes or the run
    /// is stopped: `Err` is the failure, said in full. A body that blocks its thread still times
    /// out on time; its thread is left behind, and its lease ends with this call.
    async fn run_body(&self, mut cluster: Cluster, job: &Job) -> Result<(), String> {
        let _shown = progress::doing(
            progress::Doing::Running,
            format!("[{}] {}", cluster.topology().label(), job.name),
        );
        // What inside the test can fail it at once (a probe that broke).
        let (fail_test, mut failed) = test_thread::FailTest::channel();
        cluster.fail_test = Some(fail_test);
        let mut body = test_thread::start(&job.name, (job.run)(cluster))
            .map_err(|err| format!("could not start a thread for the test: {err}"))?;
        tokio::select! {
            ended = body.finished() => ended,
            Some(failure) = failed.recv() => {
                body.cancel();
                Err(failure)
            }
            _ = tokio::time::sleep(job.timeout) => {
                body.cancel();
                Err(format!(
                    "test timed out after {} (set `timeout = \"...\"` on #[chaos_test], or CHAOS_TEST_TIMEOUT \
                     for every test); the cluster is healed before the next test",
                    humantime::format_duration(job.timeout)
                ))
            }
            interrupt = self.stop.wait() => {
                body.cancel();
                Err(format!("stopped by {} while it ran", interrupt.name()))
            }
        }
    }

    fn reproduce_line(&self, test: &str) -> String {
        let r = &self.reproduce;
        format!(
            "CHAOS_SEED={} CHAOS_PROVIDER={} {} --exact '{test}'",
            r.run_seed, r.provider, r.command
        )
    }

    /// Writes the test's timeline file; a failure to write is said, not fatal.
    fn write_timeline(&self, cluster: &SharedCluster, job: &Job, run: &TestRun) {
        let path = timeline::path_for(&job.name);
        let file = TimelineFile {
            test: &job.name,
            cluster: &cluster.name,
            topology: cluster.topology.label(),
            seed: run.seed,
            run_seed: self.reproduce.run_seed,
            reproduce: &self.reproduce_line(&job.name),
            outcome: match &run.outcome {
                Outcome::Passed => "passed",
                Outcome::Failed(message) | Outcome::NotRun(message) => message,
            },
            entries: run.timeline.entries(),
        };
        if let Err(err) = timeline::write(&path, &file) {
            say(format!(
                "could not write the timeline of {}: {err:#}",
                job.name
            ));
        }
    }

    /// Undoes what the test left behind and checks the cluster is as created. `Err` says why it is
    /// not, and the cluster must not serve another test.
    async fn heal_and_check(
        &self,
        cluster: &SharedCluster,
        namespace: &str,
        timeline: &Timeline,
    ) -> Result<(), String> {
        // Each step waits with its own limit; this one bounds them all (an undo that hangs, a
        // lock a stopped test still held), so that a heal ends and a broken cluster is replaced.
        let limit = self.pool.provider.health_timeout() * 4;
        match tokio::time::timeout(limit, self.heal_steps(cluster, namespace, timeline)).await {
            Ok(healed) => healed,
            Err(_) => Err(format!(
                "the heal did not finish within {}",
                humantime::format_duration(limit)
            )),
        }
    }

    async fn heal_steps(
        &self,
        cluster: &SharedCluster,
        namespace: &str,
        timeline: &Timeline,
    ) -> Result<(), String> {
        let client = cluster.provisioned.client.clone();
        let timeout = self.pool.provider.health_timeout();
        let undone = cluster.ledger.heal().await;
        for what in undone.as_ref().into_iter().flatten() {
            timeline.record(EntryKind::Heal, format!("undone: {what}"));
        }
        undone.map_err(|err| format!("its faults could not all be undone: {err}"))?;
        cluster
            .provisioned
            .node_faults
            .heal_unrecorded()
            .await
            .map_err(|err| format!("its faults could not all be undone: {err:#}"))?;
        namespace::remove(client.clone(), namespace, timeout)
            .await
            .map_err(|err| format!("its namespace could not be removed: {err:#}"))?;
        // What the test changed outside its namespace (cordons, taints, labels, namespaces,
        // objects) is put back as it was at hand-out, or the cluster is recreated.
        let put_back = cluster
            .baseline
            .restore(&client, namespace, timeout)
            .await?;
        for what in put_back {
            timeline.record(EntryKind::Heal, format!("put back: {what}"));
        }
        health::wait_healthy(client, &cluster.provisioned.nodes, timeout)
            .await
            .map_err(|err| err.to_string())?;
        cluster.provisioned.node_faults.check_after_heal().await
    }
}
