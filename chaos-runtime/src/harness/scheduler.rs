//! Runs the selected tests on their clusters, apart from libtest-mimic's worker threads: groups of
//! different topologies run in parallel, each group's tests one after another on its cluster.
//!
//! libtest-mimic hands tests to threads in list order, so a thread that takes the second test of
//! a busy cluster would sit idle while other clusters wait. Instead each trial only waits for the
//! outcome this scheduler sends it.

mod retry;

use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use chaos_topology::Topology;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cluster::{Cluster, SharedCluster};
use crate::harness::ending::{Interrupt, Stop};
use crate::harness::junit::{Attempt, Results};
use crate::harness::lease_records::{Acquired, RunLeases};
use crate::harness::pool::Pool;
use crate::harness::progress::{self, reporting, say};
use crate::harness::test_thread;
use crate::lease::Lease;
use crate::namespace;
use crate::observe::baseline::Baseline;
use crate::observe::health;
use crate::provider::Provisioned;
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
    /// How many times it runs again after a failure: `retries = N`, else `CHAOS_RETRIES`.
    pub retries: u32,
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
    /// The seed of the attempt that decided the outcome.
    seed: u64,
    /// Every attempt, oldest first.
    attempts: Vec<Attempt>,
    /// The command that reproduces the attempt that decided the outcome.
    reproduce: String,
}

/// What a failure message needs to say how to rerun the test alone.
pub(crate) struct Reproduce {
    pub run_seed: u64,
    pub provider: &'static str,
    /// e.g. `cargo test --test chaos --`
    pub command: String,
    /// `CHAOS_TEST_SEED`, when the run was given one.
    pub test_seed: Option<u64>,
}

impl Reproduce {
    /// The command that reruns `test` alone; with `test_seed`, its first attempt gets that seed.
    pub fn line(&self, test: &str, test_seed: Option<u64>) -> String {
        let test_seed = test_seed
            .map(|seed| format!("CHAOS_TEST_SEED={seed} "))
            .unwrap_or_default();
        format!(
            "CHAOS_SEED={} {test_seed}CHAOS_PROVIDER={} {} --exact '{test}'",
            self.run_seed, self.provider, self.command
        )
    }
}

pub(crate) struct Scheduler {
    pub pool: Arc<Pool>,
    /// Clusters outlive the run: `CHAOS_KEEP=1`, or a provider that reuses them.
    pub keep_clusters: bool,
    pub reproduce: Reproduce,
    /// Set on a signal (or a test's `exit`): nothing new starts.
    pub stop: Stop,
    /// Under nextest, with a shareable provider: the clusters of the nextest run, shared with its
    /// other test processes (`harness::lease_records`). A cluster is then taken from the run or
    /// created for it, and put back idle after the group (healed) rather than removed.
    pub leases: Option<Arc<RunLeases>>,
    /// What each test came to, for the summary and the JUnit report.
    pub results: Arc<Results>,
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
            let left = count - index + 1;
            let (run, alive) = self
                .run_attempts(&mut cluster, &group.topology, &job, &mut jobs, left)
                .await;
            let _ = job.outcome.send(run.outcome.clone());
            if !alive {
                // Its cluster could not be recreated between attempts: the group's other tests
                // have their outcomes, and there is no cluster left to tear down.
                return;
            }
            let last = index == count || self.stop.interrupted().is_some();
            // A shared cluster is healed after its last test too: another process takes it next.
            if last && !self.keep_clusters && self.leases.is_none() {
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
                self.put_back(&cluster, false).await;
                return;
            }
            say(format!(
                "cluster {} is unhealthy after {}: {problem}; recreating it",
                cluster.name, job.name
            ));
            self.put_back(&cluster, false).await;
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
            // Stopped midway, its last test was not known to be healed: not to be shared.
            self.put_back(&cluster, self.stop.interrupted().is_none())
                .await;
        }
    }

    /// Done with `cluster`: removed, or under nextest, when `healthy`, left idle for the run's
    /// other test processes (and forgotten here, so that this process's teardown leaves it).
    pub(super) async fn put_back(&self, cluster: &Arc<SharedCluster>, healthy: bool) {
        let Some(leases) = &self.leases else {
            self.pool.destroy(cluster).await;
            return;
        };
        if healthy {
            self.pool.forget(&cluster.name);
            match leases.release(&cluster.name) {
                Ok(()) => say(format!(
                    "cluster {} healed and left idle for the nextest run's other tests",
                    cluster.name
                )),
                Err(err) => say(format!(
                    "could not mark cluster {} idle in the run's lease records: {err:#}",
                    cluster.name
                )),
            }
            return;
        }
        self.pool.destroy(cluster).await;
        if let Err(err) = leases.forget(&cluster.name) {
            say(format!("could not update the run's lease records: {err:#}"));
        }
    }

    /// Under nextest: an idle cluster of `topology` from the run, or a new one made for the run
    /// (waiting, if need be, as `lease_records` says).
    async fn lease(
        &self,
        leases: &RunLeases,
        topology: &Topology,
        tests: usize,
    ) -> anyhow::Result<Arc<SharedCluster>> {
        let provider = &self.pool.provider;
        let acquired = reporting(
            &format!(
                "still waiting for a [{}] cluster of the nextest run",
                topology.label()
            ),
            leases.acquire(&**provider, topology, || provider.cluster_name(topology)),
        )
        .await?;
        let name = match acquired {
            Acquired::Create(name) => {
                self.pool.creating(&name);
                let made = self.provision(&name, topology, tests).await;
                self.pool.created(&name);
                leases.created(&name, made.is_ok(), provider.kubeconfig_of(&name))?;
                return made;
            }
            Acquired::Adopt(name) => name,
        };
        let start = Instant::now();
        let adopted = async {
            let provisioned = provider.adopt(&name, topology).await?;
            let baseline = Baseline::take(&provisioned.client).await?;
            anyhow::Ok((provisioned, baseline))
        }
        .await;
        let (provisioned, baseline) = match adopted {
            Ok(adopted) => adopted,
            Err(err) => {
                say(format!(
                    "cluster {name}, left idle by another test process, cannot be used ({err:#}); removing it"
                ));
                if let Err(gone) = provider.destroy_by_name(&name).await {
                    say(format!("could not remove cluster {name}: {gone:#}"));
                }
                leases.forget(&name)?;
                return Err(err.context(format!("taking over cluster {name}")));
            }
        };
        // Its baseline is taken anew: the last test's heal put it back as first handed out, and
        // checked it, before it was left idle.
        let cluster = self.hand_out(name, topology, provisioned, baseline);
        say(format!(
            "took cluster {} [{}], left idle by another test process of the nextest run, after {:.1}s",
            cluster.name,
            topology.label(),
            start.elapsed().as_secs_f64()
        ));
        Ok(cluster)
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
        if let Some(interrupt) = self.stop.interrupted() {
            jobs.for_each(|job| drop(job.outcome.send(not_run(interrupt))));
            return None;
        }
        if let Some(leases) = &self.leases {
            let leased = tokio::select! {
                leased = self.lease(leases, topology, tests) => leased,
                interrupt = self.stop.wait() => {
                    // What this process was creating goes; a cluster it had taken is held by a
                    // process about to end, which the run's reaper removes.
                    for name in self.pool.being_created() {
                        say(format!("{}: stopping the creation of cluster {name}", interrupt.name()));
                        self.pool.discard(&name).await;
                        let _ = leases.forget(&name);
                    }
                    jobs.for_each(|job| drop(job.outcome.send(not_run(interrupt))));
                    return None;
                }
            };
            return match leased {
                Ok(cluster) => Some(cluster),
                Err(err) => {
                    for job in jobs {
                        let _ = job.outcome.send(Outcome::Failed(format!(
                            "no [{label}] cluster for this test: {err:#}"
                        )));
                    }
                    None
                }
            };
        }
        let name = self.pool.provider.cluster_name(topology);
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

    /// A cluster made or taken over, with its baseline, made live in the pool.
    fn hand_out(
        &self,
        name: String,
        topology: &Topology,
        provisioned: Provisioned,
        baseline: Baseline,
    ) -> Arc<SharedCluster> {
        let cluster = Arc::new(SharedCluster {
            name,
            topology: topology.clone(),
            provisioned,
            ledger: Default::default(),
            baseline,
        });
        self.pool.add(cluster.clone());
        cluster
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
        let cluster = self.hand_out(name, topology, provisioned, baseline);
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

    /// Runs one attempt of a test in its own namespace and task, so that a panic or a timeout
    /// fails the test and nothing else: its namespace, and `Err` with the failure in full.
    /// `attempt` names the attempt in the timeline when the test has several.
    async fn run_test(
        &self,
        shared: &Arc<SharedCluster>,
        job: &Job,
        seed: u64,
        timeline: &Arc<Timeline>,
        attempt: Option<&str>,
    ) -> (String, Result<(), String>) {
        let namespace = namespace::name_for(&job.name, seed);
        let started = format!(
            "started on cluster {} in namespace {namespace}, seed {seed}",
            shared.name
        );
        timeline.record(
            EntryKind::Test,
            match attempt {
                Some(attempt) => format!("{attempt} {started}"),
                None => started,
            },
        );
        let ended = match namespace::create(shared.provisioned.client.clone(), &namespace).await {
            Err(err) => Err(format!(
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
                ended
            }
        };
        (namespace, ended)
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

    /// Writes the test's timeline file; a failure to write is said, not fatal.
    fn write_timeline(&self, cluster: &SharedCluster, job: &Job, run: &TestRun) {
        let path = timeline::path_for(&job.name);
        let file = TimelineFile {
            test: &job.name,
            cluster: &cluster.name,
            topology: cluster.topology.label(),
            seed: run.seed,
            run_seed: self.reproduce.run_seed,
            reproduce: &run.reproduce,
            outcome: match &run.outcome {
                Outcome::Passed => "passed",
                Outcome::Failed(message) | Outcome::NotRun(message) => message,
            },
            entries: run.timeline.entries(),
            attempts: retry::timeline_attempts(&run.attempts),
            flaky: run.outcome_is_flaky(),
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
