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
use crate::harness::panics;
use crate::harness::pool::Pool;
use crate::harness::progress::{reporting, say};
use crate::harness::seed::test_seed;
use crate::namespace;
use crate::observe::health;
use crate::registry::TestFuture;
use crate::timeline::{self, EntryKind, Timeline, TimelineFile};

/// A test's result as libtest-mimic reports it: `Err` holds the whole failure message.
pub(crate) type Outcome = Result<(), String>;

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
            let Ok(slot) = clusters.clone().acquire_owned().await else {
                break;
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
        let mut cluster = match self.provision(&group.topology, group.jobs.len()).await {
            Ok(cluster) => cluster,
            Err(err) => {
                for job in group.jobs {
                    let _ = job.outcome.send(Err(format!(
                        "the [{label}] cluster could not be created: {err:#}"
                    )));
                }
                return;
            }
        };
        // One slot for the whole group: its tests keep their order on its cluster.
        let _slot = test_slots.acquire_owned().await;
        let count = group.jobs.len();
        for (index, job) in group.jobs.into_iter().enumerate() {
            let run = self.run_test(&cluster, &job).await;
            let _ = job.outcome.send(run.outcome.clone());
            if index + 1 == count {
                break; // The cluster goes away next: nothing to heal it for.
            }
            let healed = self
                .heal_and_check(&cluster, &run.namespace, &run.timeline)
                .await;
            match &healed {
                Ok(()) => run
                    .timeline
                    .record(EntryKind::Heal, "cluster healed and healthy"),
                Err(problem) => run.timeline.record(
                    EntryKind::Heal,
                    format!("cluster unhealthy, recreated: {problem}"),
                ),
            }
            self.write_timeline(&cluster, &job, &run);
            if let Err(problem) = healed {
                say(format!(
                    "cluster {} is unhealthy after {}: {problem}; recreating it",
                    cluster.name, job.name
                ));
                self.pool.destroy(&cluster).await;
                match self.provision(&group.topology, count - index - 1).await {
                    Ok(fresh) => {
                        self.pool
                            .counters
                            .recreated
                            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        cluster = fresh;
                    }
                    Err(err) => {
                        say(format!("could not recreate the [{label}] cluster: {err:#}"));
                        return; // The remaining jobs' senders drop: their trials fail with this.
                    }
                }
            }
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

    async fn provision(
        &self,
        topology: &Topology,
        tests: usize,
    ) -> anyhow::Result<Arc<SharedCluster>> {
        let name = self.pool.provider.cluster_name(topology);
        let provider = &self.pool.provider;
        say(format!(
            "creating cluster {name} [{}] on {} for {tests} test(s)",
            topology.label(),
            provider.name()
        ));
        let start = Instant::now();
        let provisioned = reporting(
            &format!("still creating cluster {name}"),
            provider.create(&name, topology),
        )
        .await?;
        let cluster = Arc::new(SharedCluster {
            name,
            topology: topology.clone(),
            provisioned,
            ledger: Default::default(),
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
                let cluster =
                    Cluster::for_test(shared.clone(), namespace.clone(), seed, timeline.clone());
                self.run_body(cluster, job).await.err()
            }
        };
        let outcome = match failure {
            None => {
                timeline.record(EntryKind::Test, "passed");
                Ok(())
            }
            Some(failure) => {
                timeline.record(
                    EntryKind::Test,
                    format!("failed: {}", failure.lines().next().unwrap_or_default()),
                );
                let path = timeline::path_for(&job.name);
                Err(format!(
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

    /// The test body in its own task: `Err` is the failure, said in full.
    async fn run_body(&self, cluster: Cluster, job: &Job) -> Result<(), String> {
        let task = tokio::spawn(panics::as_test((job.run)(cluster)));
        let (abort, task_id) = (task.abort_handle(), task.id());
        match tokio::time::timeout(job.timeout, task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(err))) => Err(error_report(&err)),
            Ok(Err(join)) if join.is_panic() => Err(panics::take_report(task_id)
                .unwrap_or_else(|| format!("test panicked: {}", panic_message(join.into_panic())))),
            Ok(Err(join)) => Err(format!("test was cancelled: {join}")),
            Err(_) => {
                abort.abort();
                Err(format!(
                    "test timed out after {} (set `timeout = \"...\"` on #[chaos_test], or CHAOS_TEST_TIMEOUT \
                     for every test); the cluster is healed before the next test",
                    humantime::format_duration(job.timeout)
                ))
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
                Ok(()) => "passed",
                Err(message) => message,
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
        health::wait_healthy(client, &cluster.provisioned.nodes, timeout)
            .await
            .map_err(|err| err.to_string())?;
        cluster.provisioned.node_faults.check_after_heal().await
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
