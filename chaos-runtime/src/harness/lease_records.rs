//! Clusters shared by the test processes of one `cargo nextest run`.
//!
//! # Why
//!
//! nextest runs each test in a process of its own: it runs `<test binary> --exact <name>
//! --nocapture` once per test, and tells the process so through its environment (nextest's
//! "Environment variables nextest sets", <https://nexte.st/docs/configuration/env-vars/>):
//! `NEXTEST_RUN_ID`, "a UUID corresponding to a particular nextest run", the same for every test
//! of one `cargo nextest run`, and `NEXTEST_EXECUTION_MODE`, "currently, always set to
//! `process-per-test`". Left alone, every process would make its own cluster (9 instead of 3 on
//! `tests/chaos.rs`). Here the processes of one run share them, as the threads of a `cargo test`
//! run do.
//!
//! # The records
//!
//! One directory per nextest run, `<state dir>/nextest/<NEXTEST_RUN_ID>/` (the state dir of
//! [`crate::dirs::state_dir`], where kind's ownership records live too), holding:
//!
//! - `leases.json`, the [`Book`]: the nextest process the run belongs to (pid and start time),
//!   the reaper's process, and one [`Entry`] per cluster: its name, topology label, provider,
//!   kubeconfig, and its [`State`]: being created by a process (since when), held by a process
//!   (since when), idle (since when), or being removed by a process;
//! - `lock`, the file every reader and writer of `leases.json` locks exclusively first (the
//!   standard library's `File::try_lock`, an advisory `flock` on Linux, stable since Rust 1.89:
//!   no crate needed). The lock is held only to read, decide and write: never while a cluster is
//!   created, healed or deleted;
//! - `reaper.log`, what the reaper said.
//!
//! # A test process
//!
//! 1. takes the lock and, in this order: takes an idle cluster of its topology (marks it held by
//!    its pid and start time); or, when a cluster of its topology exists but is held or being
//!    made, waits for it (one cluster per topology, as under `cargo test`); or, when fewer than
//!    `CHAOS_MAX_CLUSTERS` clusters exist across every process of the run, records one as being
//!    created by itself and creates it with the lock released; or, when an idle cluster of
//!    another topology takes the room, marks it being removed, removes it and tries again; or
//!    waits. A waiting process polls every [`POLL`], for at most [`WAIT_LIMIT`], and its error
//!    says what it waited for;
//! 2. runs its test, then heals and checks the cluster as under `cargo test`
//!    (`harness::scheduler`): healthy, it is marked idle; not, it is removed and forgotten.
//!
//! A cluster held, or being made, by a process that is gone (nextest killed it on its timeout) is
//! in an unknown state: it is removed, by whoever sees it first.
//!
//! # Only shareable providers
//!
//! A cluster is shared only when another process can reach it: [`Provider::shareable`] (kind:
//! through the kubeconfig it wrote on disk; another process adopts it with [`Provider::adopt`]).
//! The sim keeps its clusters in the memory of the process that made them: under nextest each
//! test process keeps its own sim cluster, and the run says so once.
//!
//! # Teardown: the reaper
//!
//! nextest never tells a test process it is the last one, so the process that creates the run's
//! records also starts a reaper: the same test binary, run again with `CHAOS_LEASE_REAPER=<run
//! dir>` (which `harness::run` checks before anything else), in a session of its own so that
//! nextest's signals to its tests' process groups do not reach it, its output in `reaper.log`
//! (so that nextest, which waits for a test's output pipes to close, does not take it for a
//! leaked process). Every [`POLL`] it removes the idle clusters once the nextest process is gone,
//! or once one stayed idle longer than `CHAOS_IDLE_TIMEOUT` (default [`DEFAULT_IDLE_TIMEOUT`]),
//! and those whose holder is gone; when nextest is gone and nothing is left it removes the run's
//! directory and exits.
//!
//! The nextest process is the test process's parent: nextest starts each test itself, directly or
//! through its "double-spawn" stub, which `exec`s the test binary and so keeps the pid (nextest
//! `cargo-nextest/src/double_spawn.rs`, `DoubleSpawnOpts::exec`).
//!
//! # A killed nextest
//!
//! kind's ownership records (`provider/kind/ownership.rs`) name the nextest process as the owner
//! of the run's clusters ([`ownership::set_run_owner`]), not the test process that created one:
//! the cluster outlives that process while the run goes on, and becomes a leftover once nextest
//! is gone. If the reaper is killed too, the next run or `cargo chaos gc` removes the clusters,
//! and `gc` the run's directory ([`remove_ended_runs`]).
//!
//! # Not done yet
//!
//! `CHAOS_KEEP` and `CHAOS_REUSE` under nextest (the reaper removes every cluster); progress lines
//! of the reaper anywhere but its log; the summary of the whole run (each process prints its own:
//! `clusters_created` counts the clusters it made, `clusters_reused` those it adopted).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use chaos_topology::Topology;
use serde::{Deserialize, Serialize};

use crate::harness::progress::say;
use crate::provider::Provider;
use crate::provider::kind::ownership::{self, OwnerState};

/// nextest's run id (<https://nexte.st/docs/configuration/env-vars/>).
const RUN_ID_VAR: &str = "NEXTEST_RUN_ID";
/// nextest's execution mode: `process-per-test`, the only one there is (same page).
const MODE_VAR: &str = "NEXTEST_EXECUTION_MODE";
/// Set on the reaper: the run directory it watches.
pub(crate) const REAPER_VAR: &str = "CHAOS_LEASE_REAPER";
/// How long a cluster may stay idle before the reaper removes it.
pub(crate) const IDLE_TIMEOUT_VAR: &str = "CHAOS_IDLE_TIMEOUT";
/// [`IDLE_TIMEOUT_VAR`] when unset: long enough for nextest to start the next test of a
/// topology, short enough not to hold a cluster long after its last test.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a waiting process, and the reaper, look at the records.
const POLL: Duration = Duration::from_millis(200);
/// The longest a test process waits for a cluster of its topology (other tests of that topology
/// run first, each within its own timeout).
const WAIT_LIMIT: Duration = Duration::from_secs(30 * 60);
/// The longest anyone waits for the lock (it is held only to read and write a small file).
const LOCK_LIMIT: Duration = Duration::from_secs(30);
/// The longest the reaper waits, once nextest is gone, for test processes still holding clusters.
const ORPHAN_LIMIT: Duration = Duration::from_secs(60 * 60);

/// A process, as the kernel knows it: a pid and its start time (a recycled pid is another process).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Process {
    pub pid: u32,
    /// Clock ticks since boot (`/proc/<pid>/stat`, field 22).
    pub start: u64,
}

impl Process {
    pub fn this() -> Process {
        let pid = std::process::id();
        Process {
            pid,
            start: ownership::process_start(pid).unwrap_or(0),
        }
    }

    fn of(pid: u32) -> Option<Process> {
        Some(Process {
            pid,
            start: ownership::process_start(pid)?,
        })
    }

    pub fn alive(&self) -> bool {
        ownership::owner_state(self.pid, self.start) == OwnerState::Running
    }
}

/// What a cluster of the run is doing now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(crate) enum State {
    Creating { by: Process, since_ms: u64 },
    Held { by: Process, since_ms: u64 },
    Idle { since_ms: u64 },
    Removing { by: Process, since_ms: u64 },
}

/// One cluster of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub name: String,
    /// Its topology's label, as in test names.
    pub topology: String,
    pub provider: String,
    pub kubeconfig: Option<PathBuf>,
    #[serde(flatten)]
    pub state: State,
}

/// `leases.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Book {
    /// The nextest process the run belongs to.
    pub owner: Process,
    pub reaper: Option<Process>,
    pub clusters: Vec<Entry>,
}

/// What a test process is to do for a cluster of its topology.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// Take this idle cluster (now held by us).
    Take(String),
    /// Create it (recorded as being created by us).
    Create(String),
    /// Remove these (recorded as being removed by us), then decide again.
    Remove(Vec<String>),
    /// Look again later; why.
    Wait(String),
}

/// How a test process got its cluster.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// Another process made it and left it idle: adopt it.
    Adopt(String),
    /// Ours to create; once made (or not), say so with [`RunLeases::created`].
    Create(String),
}

/// This process's view of its nextest run.
#[derive(Clone, Debug)]
pub(crate) struct RunContext {
    pub run_id: String,
    /// The nextest process.
    pub owner: Process,
    pub dir: PathBuf,
    pub idle_timeout: Duration,
}

impl RunContext {
    /// The nextest run this process is a test of, or `None` when it is not run by nextest (or by
    /// an execution mode other than process-per-test, where sharing within the process is the
    /// usual harness's). A malformed run id or idle timeout is an error naming the variable.
    pub fn from_env() -> anyhow::Result<Option<RunContext>> {
        let Some(run_id) = std::env::var_os(RUN_ID_VAR).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let run_id = run_id
            .into_string()
            .map_err(|v| anyhow::anyhow!("{RUN_ID_VAR}={v:?} is not valid Unicode; nextest sets a UUID there: unset it to run without nextest"))?;
        check_run_id(&run_id)?;
        if let Some(mode) = std::env::var_os(MODE_VAR).filter(|v| !v.is_empty())
            && mode != "process-per-test"
        {
            return Ok(None);
        }
        let idle_timeout = idle_timeout_from_env()?;
        // SAFETY: a plain syscall without arguments.
        let parent = unsafe { libc::getppid() } as u32;
        let Some(owner) = Process::of(parent).filter(|_| parent > 1) else {
            say(format!(
                "{RUN_ID_VAR} is set but the process that started this one (pid {parent}) is gone: \
                 not sharing clusters with other test processes"
            ));
            return Ok(None);
        };
        let dir = runs_dir(&crate::dirs::state_dir()).join(&run_id);
        Ok(Some(RunContext {
            run_id,
            owner,
            dir,
            idle_timeout,
        }))
    }

    /// Makes the run's directory; `true` for the one process that made it (the first of the run),
    /// which prints the run's banners and starts the reaper.
    pub fn open(&self) -> anyhow::Result<bool> {
        let parent = self.dir.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        match std::fs::create_dir(&self.dir) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(err) => Err(err).with_context(|| format!("creating {}", self.dir.display())),
        }
    }

    /// Starts the reaper: this binary again, with [`REAPER_VAR`], in a session of its own, its
    /// output in `reaper.log`.
    pub fn spawn_reaper(&self) -> anyhow::Result<()> {
        use std::os::unix::process::CommandExt;
        let exe =
            std::env::current_exe().context("finding this test binary to start the reaper")?;
        let log_path = self.dir.join("reaper.log");
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let mut command = std::process::Command::new(exe);
        command
            .env(REAPER_VAR, &self.dir)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: `setsid` is async-signal-safe, as `pre_exec` requires.
        unsafe {
            command.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = command.spawn().context("starting the reaper")?;
        let reaper = Process::of(child.id());
        with_book(&self.dir, self.owner, |book| book.reaper = reaper)?;
        Ok(())
    }
}

/// A run id names a directory: only what a UUID holds.
fn check_run_id(run_id: &str) -> anyhow::Result<()> {
    if run_id.is_empty()
        || !run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        bail!(
            "{RUN_ID_VAR}={run_id:?} is not a nextest run id (a UUID, as nextest sets it); unset it to run without nextest"
        );
    }
    Ok(())
}

/// `CHAOS_IDLE_TIMEOUT`, else [`DEFAULT_IDLE_TIMEOUT`].
fn idle_timeout_from_env() -> anyhow::Result<Duration> {
    let Some(text) = std::env::var_os(IDLE_TIMEOUT_VAR).filter(|v| !v.is_empty()) else {
        return Ok(DEFAULT_IDLE_TIMEOUT);
    };
    let text = text.to_string_lossy().into_owned();
    humantime::parse_duration(text.trim()).with_context(|| {
        format!("{IDLE_TIMEOUT_VAR}={text} is not a duration; write it like 60s, 5m or 500ms")
    })
}

/// `<state dir>/nextest`: one directory per nextest run.
fn runs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("nextest")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The run's records, as one test process (or the reaper) uses them.
pub(crate) struct RunLeases {
    ctx: RunContext,
    /// The provider this process creates clusters with, as records name it.
    provider: &'static str,
    /// `CHAOS_MAX_CLUSTERS`: clusters alive at once across every process of the run.
    max_clusters: usize,
    me: Process,
}

impl RunLeases {
    pub fn new(ctx: RunContext, provider: &'static str, max_clusters: usize) -> RunLeases {
        RunLeases {
            ctx,
            provider,
            max_clusters: max_clusters.max(1),
            me: Process::this(),
        }
    }

    /// Runs `change` on the book under the lock, and writes it back.
    fn with_book<T>(&self, change: impl FnOnce(&mut Book) -> T) -> anyhow::Result<T> {
        with_book(&self.ctx.dir, self.ctx.owner, change)
    }

    /// A cluster of `topology` for this process, waiting while the run has none to give.
    /// `new_name` names a cluster to create.
    pub async fn acquire(
        &self,
        provider: &dyn Provider,
        topology: &Topology,
        new_name: impl Fn() -> String,
    ) -> anyhow::Result<Acquired> {
        let label = topology.label();
        let started = Instant::now();
        loop {
            let name = new_name();
            let decision = self.with_book(|book| {
                decide(
                    book,
                    &label,
                    self.provider,
                    &name,
                    self.max_clusters,
                    self.me,
                    now_ms(),
                )
            })?;
            match decision {
                Decision::Take(name) => return Ok(Acquired::Adopt(name)),
                Decision::Create(name) => return Ok(Acquired::Create(name)),
                Decision::Remove(names) => {
                    for name in names {
                        self.remove(provider, &name).await;
                    }
                }
                Decision::Wait(why) => {
                    if started.elapsed() >= WAIT_LIMIT {
                        bail!(
                            "waited {} for a [{label}] cluster of nextest run {}: {why}; put each \
                             topology's tests in a nextest test group with max-threads = 1 \
                             (README, \"Under nextest\")",
                            humantime::format_duration(WAIT_LIMIT),
                            self.ctx.run_id
                        );
                    }
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    /// The creation of `name` ended: made (then held by this process), or not (then forgotten).
    pub fn created(
        &self,
        name: &str,
        made: bool,
        kubeconfig: Option<PathBuf>,
    ) -> anyhow::Result<()> {
        let me = self.me;
        self.with_book(|book| {
            if !made {
                book.clusters.retain(|e| e.name != name);
                return;
            }
            if let Some(entry) = book.clusters.iter_mut().find(|e| e.name == name) {
                entry.kubeconfig = kubeconfig;
                entry.state = State::Held {
                    by: me,
                    since_ms: now_ms(),
                };
            }
        })
    }

    /// This process is done with `name`, healed and healthy: another may take it.
    pub fn release(&self, name: &str) -> anyhow::Result<()> {
        self.with_book(|book| {
            if let Some(entry) = book.clusters.iter_mut().find(|e| e.name == name) {
                entry.state = State::Idle { since_ms: now_ms() };
            }
        })
    }

    /// `name` is gone (removed by this process): forget it.
    pub fn forget(&self, name: &str) -> anyhow::Result<()> {
        self.with_book(|book| book.clusters.retain(|e| e.name != name))
    }

    /// Removes a cluster this process marked as being removed, and forgets it; a failure is said
    /// (its ownership record stays for `cargo chaos gc`).
    async fn remove(&self, provider: &dyn Provider, name: &str) {
        match provider.destroy_by_name(name).await {
            Ok(()) => say(format!("removed cluster {name} of the nextest run")),
            Err(err) => say(format!(
                "could not remove cluster {name} of the nextest run: {err:#}; `cargo chaos gc` removes it once the run ended"
            )),
        }
        if let Err(err) = self.forget(name) {
            say(format!("could not update the run's lease records: {err:#}"));
        }
    }
}

/// Reads the book of `dir` under its lock, changes it, writes it back.
fn with_book<T>(
    dir: &Path,
    owner: Process,
    change: impl FnOnce(&mut Book) -> T,
) -> anyhow::Result<T> {
    let lock_path = dir.join("lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    let started = Instant::now();
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_LIMIT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "waited {} for the lock {} of the nextest run's lease records; another test \
                 process holds it: if none is running, remove {}",
                humantime::format_duration(LOCK_LIMIT),
                lock_path.display(),
                dir.display()
            ),
            Err(std::fs::TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("locking {}", lock_path.display()));
            }
        }
    }
    let path = dir.join("leases.json");
    let mut book = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<Book>(&bytes).with_context(|| {
            format!(
                "{} is not a lease record; remove {} if no nextest run uses it",
                path.display(),
                dir.display()
            )
        })?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Book {
            owner,
            reaper: None,
            clusters: Vec::new(),
        },
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    let before = book.clone();
    let out = change(&mut book);
    if book != before {
        let temp = dir.join("leases.json.tmp");
        std::fs::write(&temp, serde_json::to_vec_pretty(&book)?)
            .with_context(|| format!("writing {}", temp.display()))?;
        std::fs::rename(&temp, &path).with_context(|| format!("writing {}", path.display()))?;
    }
    drop(lock);
    Ok(out)
}

/// The one decision of a test process that wants a `label` cluster; see the module's doc.
fn decide(
    book: &mut Book,
    label: &str,
    provider: &str,
    new_name: &str,
    max_clusters: usize,
    me: Process,
    now: u64,
) -> Decision {
    // Held or being made by a process that is gone: in an unknown state, it goes.
    let orphans: Vec<String> = book
        .clusters
        .iter_mut()
        .filter_map(|entry| {
            let by = match entry.state {
                State::Creating { by, .. }
                | State::Held { by, .. }
                | State::Removing { by, .. } => by,
                State::Idle { .. } => return None,
            };
            (!by.alive()).then(|| {
                entry.state = State::Removing {
                    by: me,
                    since_ms: now,
                };
                entry.name.clone()
            })
        })
        .collect();
    if !orphans.is_empty() {
        return Decision::Remove(orphans);
    }
    if let Some(entry) = book
        .clusters
        .iter_mut()
        .find(|e| e.topology == label && matches!(e.state, State::Idle { .. }))
    {
        entry.state = State::Held {
            by: me,
            since_ms: now,
        };
        return Decision::Take(entry.name.clone());
    }
    if let Some(busy) = book.clusters.iter().find(|e| e.topology == label) {
        return Decision::Wait(match &busy.state {
            State::Creating { by, .. } => {
                format!("cluster {} is being created by pid {}", busy.name, by.pid)
            }
            State::Held { by, .. } => format!(
                "cluster {} is held by the test in pid {}",
                busy.name, by.pid
            ),
            State::Removing { by, .. } => {
                format!("cluster {} is being removed by pid {}", busy.name, by.pid)
            }
            State::Idle { .. } => unreachable!("an idle one was taken above"),
        });
    }
    if book.clusters.len() < max_clusters {
        book.clusters.push(Entry {
            name: new_name.to_owned(),
            topology: label.to_owned(),
            provider: provider.to_owned(),
            kubeconfig: None,
            state: State::Creating {
                by: me,
                since_ms: now,
            },
        });
        return Decision::Create(new_name.to_owned());
    }
    if let Some(entry) = book
        .clusters
        .iter_mut()
        .find(|e| matches!(e.state, State::Idle { .. }))
    {
        entry.state = State::Removing {
            by: me,
            since_ms: now,
        };
        return Decision::Remove(vec![entry.name.clone()]);
    }
    let names: Vec<&str> = book.clusters.iter().map(|e| e.name.as_str()).collect();
    Decision::Wait(format!(
        "the run has CHAOS_MAX_CLUSTERS={max_clusters} clusters, all in use ({})",
        names.join(", ")
    ))
}

/// What the reaper is to remove now: idle clusters once nextest is gone or past the idle
/// timeout, and clusters whose holder is gone (marked as being removed by the reaper).
fn reap(
    book: &mut Book,
    nextest_gone: bool,
    idle_timeout: Duration,
    me: Process,
    now: u64,
) -> Vec<String> {
    let idle_ms = idle_timeout.as_millis() as u64;
    book.clusters
        .iter_mut()
        .filter_map(|entry| {
            let due = match entry.state {
                State::Idle { since_ms } => nextest_gone || now.saturating_sub(since_ms) >= idle_ms,
                State::Creating { by, .. }
                | State::Held { by, .. }
                | State::Removing { by, .. } => !by.alive(),
            };
            due.then(|| {
                entry.state = State::Removing {
                    by: me,
                    since_ms: now,
                };
                entry.name.clone()
            })
        })
        .collect()
}

/// `Some(exit code)` when this process is a reaper (`CHAOS_LEASE_REAPER` set): it has done its
/// work. `harness::run` calls it first.
pub(crate) fn reaper_requested() -> Option<ExitCode> {
    let dir = std::env::var_os(REAPER_VAR).filter(|v| !v.is_empty())?;
    let dir = PathBuf::from(dir);
    Some(match run_reaper(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            say(format!("reaper of {}: {err:#}", dir.display()));
            ExitCode::from(2)
        }
    })
}

fn run_reaper(dir: &Path) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let idle_timeout = idle_timeout_from_env()?;
    let me = Process::this();
    // The book names the owner; until it exists (it is written by the process that started us),
    // our parent is that test process, whose parent is nextest: read it from the book.
    let owner = {
        let path = dir.join("leases.json");
        let started = Instant::now();
        loop {
            if let Ok(bytes) = std::fs::read(&path)
                && let Ok(book) = serde_json::from_slice::<Book>(&bytes)
            {
                break book.owner;
            }
            if started.elapsed() > LOCK_LIMIT {
                bail!(
                    "{} did not appear within {}",
                    path.display(),
                    humantime::format_duration(LOCK_LIMIT)
                );
            }
            std::thread::sleep(POLL);
        }
    };
    ownership::set_run_owner(owner.pid, owner.start);
    say(format!(
        "reaper of nextest process {} watching {} (idle timeout {})",
        owner.pid,
        dir.display(),
        humantime::format_duration(idle_timeout)
    ));
    let mut provider: Option<Box<dyn Provider>> = None;
    let mut gone_since: Option<Instant> = None;
    loop {
        let nextest_gone = !owner.alive();
        if nextest_gone && gone_since.is_none() {
            say(format!("nextest process {} is gone", owner.pid));
            gone_since = Some(Instant::now());
        }
        let (due, left) = with_book(dir, owner, |book| {
            let due: Vec<(String, String)> = reap(book, nextest_gone, idle_timeout, me, now_ms())
                .into_iter()
                .map(|name| {
                    let provider = book
                        .clusters
                        .iter()
                        .find(|e| e.name == name)
                        .map(|e| e.provider.clone())
                        .unwrap_or_default();
                    (name, provider)
                })
                .collect();
            (due, book.clusters.len())
        })?;
        for (name, provider_name) in &due {
            if provider.is_none() {
                provider = Some(runtime.block_on(reaper_provider(provider_name))?);
            }
            let removing = provider.as_deref().expect("made above");
            match runtime.block_on(removing.destroy_by_name(name)) {
                Ok(()) => say(format!("removed cluster {name}")),
                Err(err) => say(format!(
                    "could not remove cluster {name}: {err:#}; `cargo chaos gc` removes it"
                )),
            }
            with_book(dir, owner, |book| book.clusters.retain(|e| &e.name != name))?;
        }
        if nextest_gone && left == due.len() {
            std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
            return Ok(());
        }
        if gone_since.is_some_and(|t| t.elapsed() > ORPHAN_LIMIT) {
            bail!(
                "nextest ended {} ago and test processes still hold clusters; leaving them to `cargo chaos gc`",
                humantime::format_duration(ORPHAN_LIMIT)
            );
        }
        std::thread::sleep(POLL);
    }
}

/// The provider the run's clusters came from, as the test processes chose it.
async fn reaper_provider(name: &str) -> anyhow::Result<Box<dyn Provider>> {
    let mut settings = crate::harness::settings::Settings::from_env()?;
    settings.provider = crate::harness::settings::ProviderChoice::parse(name)?;
    crate::provider::select(&settings, &[]).await
}

/// Removes the directories of nextest runs under `state_dir` whose nextest process is gone and
/// whose reaper is gone too (what `cargo chaos gc` does once it removed their clusters). Returns
/// the run ids removed.
pub fn remove_ended_runs(state_dir: &Path) -> Vec<String> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(runs_dir(state_dir)) else {
        return removed;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let Ok(bytes) = std::fs::read(dir.join("leases.json")) else {
            continue;
        };
        let Ok(book) = serde_json::from_slice::<Book>(&bytes) else {
            continue;
        };
        let reaper_alive = book.reaper.is_some_and(|r| r.alive());
        if !book.owner.alive() && !reaper_alive && std::fs::remove_dir_all(&dir).is_ok() {
            removed.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Process {
        Process::this()
    }

    fn dead() -> Process {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        Process { pid, start: 1 }
    }

    fn book() -> Book {
        Book {
            owner: me(),
            reaper: None,
            clusters: Vec::new(),
        }
    }

    #[test]
    fn one_cluster_per_topology_within_the_limit_idle_ones_taken_first() {
        let mut book = book();
        let a = "1m+0w";
        assert_eq!(
            decide(&mut book, a, "kind", "ca", 2, me(), 0),
            Decision::Create("ca".into())
        );
        // A second process of the same topology waits for it, rather than making another.
        let wait = decide(&mut book, a, "kind", "ca2", 2, me(), 0);
        assert!(
            matches!(&wait, Decision::Wait(why) if why.contains("ca is being created")),
            "{wait:?}"
        );
        assert_eq!(
            decide(&mut book, "1m+1w", "kind", "cb", 2, me(), 0),
            Decision::Create("cb".into())
        );
        // At the limit: a third topology waits while none is idle.
        let full = decide(&mut book, "3m+0w", "kind", "cc", 2, me(), 0);
        assert!(
            matches!(&full, Decision::Wait(why) if why.contains("CHAOS_MAX_CLUSTERS=2")),
            "{full:?}"
        );
        // Idle: taken by its topology, or removed to make room for another.
        book.clusters[0].state = State::Idle { since_ms: 5 };
        assert_eq!(
            decide(&mut book, a, "kind", "x", 2, me(), 9),
            Decision::Take("ca".into())
        );
        book.clusters[0].state = State::Idle { since_ms: 5 };
        assert_eq!(
            decide(&mut book, "3m+0w", "kind", "cc", 2, me(), 9),
            Decision::Remove(vec!["ca".into()])
        );
        assert!(matches!(book.clusters[0].state, State::Removing { .. }));
    }

    #[test]
    fn a_cluster_held_by_a_process_that_is_gone_is_removed() {
        let mut book = book();
        book.clusters.push(Entry {
            name: "c".into(),
            topology: "1m+0w".into(),
            provider: "kind".into(),
            kubeconfig: None,
            state: State::Held {
                by: dead(),
                since_ms: 0,
            },
        });
        assert_eq!(
            decide(&mut book, "1m+0w", "kind", "d", 4, me(), 1),
            Decision::Remove(vec!["c".into()])
        );
    }

    #[test]
    fn the_reaper_removes_idle_clusters_after_the_timeout_or_once_nextest_is_gone() {
        let mut book = book();
        for (name, state) in [
            ("idle-new", State::Idle { since_ms: 1_000 }),
            ("idle-old", State::Idle { since_ms: 0 }),
            (
                "held",
                State::Held {
                    by: me(),
                    since_ms: 0,
                },
            ),
            (
                "orphan",
                State::Held {
                    by: dead(),
                    since_ms: 0,
                },
            ),
        ] {
            book.clusters.push(Entry {
                name: name.into(),
                topology: "t".into(),
                provider: "kind".into(),
                kubeconfig: None,
                state,
            });
        }
        let mut running = book.clone();
        assert_eq!(
            reap(&mut running, false, Duration::from_secs(1), me(), 1_500),
            ["idle-old", "orphan"]
        );
        assert_eq!(
            reap(&mut book, true, Duration::from_secs(60), me(), 1_500),
            ["idle-new", "idle-old", "orphan"]
        );
    }

    #[test]
    fn a_run_id_that_is_not_a_uuid_is_refused_naming_the_variable() {
        assert!(check_run_id("1f79aa0d-4ec8-4a5c-aa83-5e8dc2f36573").is_ok());
        for bad in ["", "../../etc", "a b"] {
            let err = check_run_id(bad).unwrap_err().to_string();
            assert!(
                err.starts_with("NEXTEST_RUN_ID=") && err.contains("unset it"),
                "{err}"
            );
        }
    }

    #[test]
    fn records_are_shared_through_the_locked_file() {
        let dir = std::env::temp_dir().join(format!("chaos-leases-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let owner = me();
        with_book(&dir, owner, |book| {
            book.clusters.push(Entry {
                name: "c".into(),
                topology: "t".into(),
                provider: "kind".into(),
                kubeconfig: None,
                state: State::Idle { since_ms: 3 },
            })
        })
        .unwrap();
        let read = with_book(&dir, owner, |book| book.clone()).unwrap();
        assert_eq!(read.clusters.len(), 1);
        assert_eq!(read.owner, owner);
        std::fs::write(dir.join("leases.json"), "{").unwrap();
        let err = with_book(&dir, owner, |_| ()).unwrap_err();
        assert!(
            format!("{err:#}").contains("is not a lease record"),
            "{err:#}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
