//! The test harness: libtest-mimic for the command line and the report, a scheduler that leases
//! one cluster per topology, and teardown of every cluster whatever happens.

mod artifacts;
mod ending;
mod json;
mod junit;
pub(crate) mod lease_records;
mod output;
mod panics;
mod plan;
mod pool;
pub(crate) mod progress;
mod scheduler;
mod seed;
pub(crate) mod settings;
pub(crate) mod shard;
pub(crate) mod test_thread;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc;

use libtest_mimic::{Arguments, Completion, Conclusion, Trial};

use crate::provider;
use crate::registry::TESTS;
use ending::Stop;
use junit::Results;
use plan::TestCase;
use pool::Pool;
use progress::say;
use scheduler::{GroupJob, Job, Outcome, Reproduce, Scheduler};
use settings::Settings;

/// Most clusters alive at once when `CHAOS_MAX_CLUSTERS` is unset and memory allows more.
const MAX_DEFAULT_CLUSTERS: usize = 8;

/// When and where a suite runs, as its `main!` says.
#[derive(Clone, Copy, Debug)]
pub enum Suite {
    /// On the provider `CHAOS_PROVIDER` chooses.
    Always,
    /// On this provider, whatever `CHAOS_PROVIDER` says.
    OnProvider(&'static str),
    /// Only when `VAR=value` holds; otherwise every test is reported ignored with the reason.
    OnlyIfEnv(&'static str),
    /// Not at all: every test is reported ignored with this reason, and nothing is provisioned
    /// (a suite whose `main` found what it needs missing, and may skip).
    Ignored(&'static str),
}

/// `package`: the cargo package of the test target, when `main!` knows it.
pub(crate) fn run(package: Option<&'static str>, suite: Suite) -> ExitCode {
    // The reaper of a nextest run's clusters is this binary run again: it does only that.
    if let Some(code) = lease_records::reaper_requested() {
        return code;
    }
    let args = Arguments::from_args();
    let code = match run_with(args, package, suite) {
        Ok(code) => code,
        Err(err) => {
            say(format!("error: {err:#}"));
            ExitCode::from(2)
        }
    };
    // If a test called `exit`, the exit hook ends the process (with 101) from here.
    ending::conclude();
    code
}

fn run_with(
    mut args: Arguments,
    package: Option<&'static str>,
    suite: Suite,
) -> anyhow::Result<ExitCode> {
    // `cargo chaos plan --shards` asks for the topologies, as one JSON line each.
    if settings::flag("CHAOS_LIST_TOPOLOGIES")? {
        shard::print_topologies(&plan::test_cases(&TESTS)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut settings = Settings::from_env()?;
    let cases = plan::test_cases(&TESTS)?;
    if let Some(partition) = settings.partition {
        say(shard::keep_only_this_shard(partition, &cases, &mut args));
    }
    let json = json::is_json(&args);
    let names: Vec<(&str, String)> = cases
        .iter()
        .map(|c| (c.name.as_str(), c.topology.label()))
        .collect();
    json::exact_names(&mut args, &names);
    match suite {
        Suite::Always => {}
        Suite::OnProvider(name) => settings.provider = settings::ProviderChoice::parse(name)?,
        Suite::Ignored(reason) => return Ok(run_ignored(&args, &cases, reason, json)),
        Suite::OnlyIfEnv(gate) => {
            let gate = Gate::parse(gate)?;
            if !gate.is_open() {
                let reason = format!("set {}={} to run this suite", gate.var, gate.value);
                return Ok(run_ignored(&args, &cases, &reason, json));
            }
            settings.provider =
                settings::ProviderChoice::parse(gate.value).unwrap_or(settings.provider);
        }
    }

    // One trial per test; each waits for the outcome the scheduler sends it.
    let results = Arc::new(Results::default());
    let mut senders = Vec::with_capacity(cases.len());
    let mut trials: Vec<Option<Trial>> = Vec::with_capacity(cases.len());
    for case in &cases {
        let (sender, receiver) = mpsc::channel::<Outcome>();
        senders.push(Some(sender));
        trials.push(Some(trial(case, receiver, results.clone(), json)));
    }
    let selected: Vec<bool> = trials
        .iter()
        .flatten()
        .map(|t| !args.is_filtered_out(t) && !args.is_ignored(t))
        .collect();
    // For the JUnit report: what libtest lists, and what it lists but does not run.
    let listed: Vec<(bool, bool)> = trials
        .iter()
        .flatten()
        .map(|t| (!args.is_filtered_out(t), args.is_ignored(t)))
        .collect();
    let groups = plan::groups(&cases, &selected);

    // List order: each group together, largest first; then what does not run.
    let mut ordered: Vec<Trial> = Vec::with_capacity(cases.len());
    for group in &groups {
        ordered.extend(group.tests.iter().filter_map(|&i| trials[i].take()));
    }
    ordered.extend(trials.into_iter().flatten());

    if args.list || groups.is_empty() {
        // Nothing will run: no provider is touched, no cluster made.
        let conclusion = libtest_mimic::run(&args, ordered);
        if !args.list {
            print_summary(&args, &conclusion, Counts::default(), None);
        }
        return Ok(conclusion.exit_code());
    }

    let suite_name = crate::timeline::suite_of(&std::env::current_exe().unwrap_or_default());
    let junit_path = settings
        .junit
        .as_deref()
        .map(|path| junit::path_for(path, &suite_name));
    if let Some(path) = &junit_path {
        // Before anything is created: a run of an hour is not lost to a typo in the path.
        junit::check_writable(path)?;
    }
    let started = std::time::Instant::now();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .thread_name("chaos-worker")
        .build()?;
    let topologies: Vec<&chaos_topology::Topology> = groups.iter().map(|g| &g.topology).collect();
    // Under nextest, the run's banners are said once, by its first test process.
    let nextest = lease_records::RunContext::from_env()?;
    let first_of_run = match &nextest {
        Some(run) => run.open()?,
        None => true,
    };
    if !first_of_run {
        provider::quiet_banners();
    }
    let provider = runtime.block_on(provider::select(&settings, &topologies))?;
    let run_seed = settings.seed.unwrap_or_else(rand::random);
    say(format!(
        "run seed {run_seed} (CHAOS_SEED={run_seed} repeats it)"
    ));
    let max_clusters = settings.max_clusters.unwrap_or_else(|| {
        let largest = groups
            .iter()
            .map(|g| provider.memory_per_cluster(&g.topology))
            .max()
            .unwrap_or(1);
        default_max_clusters(largest)
    });
    // The trials only wait: each may have a thread, but never more than there are tests (a
    // huge `--test-threads` would make libtest start that many).
    let selected_count = selected.iter().filter(|s| **s).count().max(1);
    let test_slots = args
        .test_threads
        .unwrap_or(max_clusters)
        .clamp(1, selected_count);
    // At least 2: with one thread libtest-mimic prints `test NAME ... ` and runs the test before
    // it ends the line (0.8 `src/lib.rs`, `run`); with more it prints each line once its test
    // ended. The scheduler, not libtest, decides how many tests run at once (`test_slots`).
    args.test_threads = Some(
        match args.test_threads {
            Some(chosen) => chosen.clamp(1, selected_count),
            None => selected_count.min(64),
        }
        .max(2),
    );
    // A group holds its cluster while it waits for a test slot: never make more clusters than
    // can run tests (`--test-threads 1` makes one at a time).
    let cluster_slots = max_clusters.min(test_slots);

    let group_jobs: Vec<GroupJob> = groups
        .iter()
        .map(|group| GroupJob {
            topology: group.topology.clone(),
            jobs: group
                .tests
                .iter()
                .map(|&i| Job {
                    name: cases[i].name.clone(),
                    timeout: cases[i].timeout.unwrap_or(settings.default_timeout),
                    run: cases[i].registration.run,
                    outcome: senders[i].take().expect("each test is in one group"),
                    // The attribute wins over CHAOS_RETRIES.
                    retries: cases[i].registration.retries.unwrap_or(settings.retries),
                })
                .collect(),
        })
        .collect();
    drop(senders);

    let leases = nextest_leases(nextest, first_of_run, &*provider, max_clusters);
    let pool = Arc::new(Pool::new(provider));
    // Clusters outlive the run when asked to, or when the provider keeps them for reuse.
    let keep_clusters = settings.keep || pool.provider.reuses();
    let stop = Stop::new();
    let scheduler = Arc::new(Scheduler {
        pool: pool.clone(),
        keep_clusters,
        reproduce: Reproduce {
            run_seed,
            provider: pool.provider.name(),
            command: reproduce_command(package),
            test_seed: settings.test_seed,
        },
        stop: stop.clone(),
        leases,
        results: results.clone(),
    });
    panics::install_hook();
    runtime.spawn(ending::listen_for_signals(stop.clone(), pool.clone()));
    ending::guard_exit(stop.clone());
    let guard = TeardownGuard {
        pool: pool.clone(),
        runtime: runtime.handle().clone(),
        keep: keep_clusters,
    };
    output::keep_colour(&mut args);
    let relay = output::relay_stdout();
    let progress = progress::start(settings.progress_every, runtime.handle());
    let scheduled = runtime.spawn(scheduler.clone().run(group_jobs, cluster_slots, test_slots));

    let conclusion = libtest_mimic::run(&args, ordered);
    drop(progress);

    runtime.block_on(async {
        let _ = scheduled.await;
        if let Some(interrupt) = stop.interrupted() {
            say(format!("the run was stopped by {}", interrupt.name()));
        }
        if keep_clusters {
            for cluster in pool.live() {
                if let Err(err) = pool.provider.keep(&cluster.provisioned) {
                    say(format!(
                        "could not mark cluster {} as kept: {err:#}",
                        cluster.name
                    ));
                }
                say(pool.provider.how_to_reach(&cluster.provisioned));
            }
        }
    });
    drop(guard);
    // Test threads still blocked in their bodies do not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    let counters = &pool.counters;
    print_summary(
        &args,
        &conclusion,
        Counts {
            created: pool.get(&counters.created),
            recreated: pool.get(&counters.recreated),
            reused: pool.get(&counters.reused),
            destroyed: pool.get(&counters.destroyed),
            flaky: results.flaky(),
        },
        Some(pool.provider.name()),
    );
    drop(relay); // Every line of stdout out before what follows on stderr.
    let mut teardown_errors = pool.teardown_errors();
    if let Some(path) = &junit_path {
        let junit_cases: Vec<junit::Case> = cases
            .iter()
            .zip(&listed)
            .filter(|(_, (listed, _))| *listed)
            .map(|(case, (_, ignored))| junit::Case {
                name: &case.name,
                topology: case.topology.label(),
                file: case.registration.file,
                line: case.registration.line,
                ignored: ignored.then(|| case.ignore.unwrap_or_default()),
                seed: settings
                    .test_seed
                    .unwrap_or_else(|| seed::test_seed(run_seed, &case.name)),
            })
            .collect();
        let info = junit::RunInfo {
            suite: &suite_name,
            provider: pool.provider.name(),
            reproduce: &scheduler.reproduce,
            time: started.elapsed(),
        };
        let report = junit::report(&info, &junit_cases, &results);
        // Said like a teardown error: one line, and the run does not pass.
        if let Err(err) = junit::write(path, &report) {
            teardown_errors.push(format!(
                "could not write the JUnit report to {} (CHAOS_JUNIT): {err:#}; set CHAOS_JUNIT \
                 to a file path in a writable directory",
                path.display()
            ));
        }
    }
    for line in &teardown_errors {
        say(line);
    }
    Ok(match (stop.interrupted(), teardown_errors.is_empty()) {
        (Some(interrupt), _) => ExitCode::from(interrupt.exit_code()),
        (None, true) => conclusion.exit_code(),
        (None, false) => ExitCode::from(101),
    })
}

/// Under nextest (`run`), the records through which this test process shares clusters with the
/// run's others, when the provider's clusters can be reached from another process. The run's
/// first process starts the reaper and says how clusters are shared, once.
fn nextest_leases(
    run: Option<lease_records::RunContext>,
    first: bool,
    provider: &dyn provider::Provider,
    max_clusters: usize,
) -> Option<Arc<lease_records::RunLeases>> {
    let run = run?;
    if first && let Err(err) = run.spawn_reaper() {
        say(format!(
            "could not start the reaper of nextest run {}: {err:#}; `cargo chaos gc` removes its clusters once it ended",
            run.run_id
        ));
    }
    if !provider.shareable() {
        if first {
            say(format!(
                "nextest: each test process makes its own {} cluster (they live in one process's memory and cannot be shared)",
                provider.name()
            ));
        }
        return None;
    }
    // The run's clusters belong to nextest, not to the test process that happened to make one.
    crate::provider::kind::ownership::set_run_owner(run.owner.pid, run.owner.start);
    if first {
        say(format!(
            "nextest run {}: its test processes share clusters, at most {max_clusters} at once (records in {}; idle ones removed after {})",
            run.run_id,
            run.dir.display(),
            humantime::format_duration(run.idle_timeout)
        ));
    }
    Some(Arc::new(lease_records::RunLeases::new(
        run,
        provider.name(),
        max_clusters,
    )))
}

/// `VAR=value`: the condition under which a gated suite runs.
struct Gate {
    var: &'static str,
    value: &'static str,
}

impl Gate {
    fn parse(text: &'static str) -> anyhow::Result<Gate> {
        match text.split_once('=') {
            Some((var, value)) if !var.is_empty() => Ok(Gate { var, value }),
            _ => anyhow::bail!("main!(only_if_env = {text:?}): write it as \"VAR=value\""),
        }
    }

    fn is_open(&self) -> bool {
        std::env::var(self.var).is_ok_and(|v| v == self.value)
    }
}

/// Every test reported as ignored, with the reason; nothing provisioned.
fn run_ignored(args: &Arguments, cases: &[TestCase], reason: &str, json: bool) -> ExitCode {
    let trials = cases
        .iter()
        .map(|case| {
            let reason = reason.to_owned();
            let (name, kind) = json::trial_name(&case.name, &case.topology.label(), json);
            Trial::ignorable_test(name, move || Ok(Completion::ignored_with(reason)))
                .with_kind(kind)
        })
        .collect();
    let conclusion = libtest_mimic::run(args, trials);
    if !args.list {
        print_summary(args, &conclusion, Counts::default(), None);
    }
    conclusion.exit_code()
}

/// `json`: under `--format json`, the name carries the topology and a failure is plain text.
fn trial(
    case: &TestCase,
    outcome: mpsc::Receiver<Outcome>,
    results: Arc<Results>,
    json: bool,
) -> Trial {
    let (trial_name, kind) = json::trial_name(&case.name, &case.topology.label(), json);
    let name = case.name.clone();
    Trial::ignorable_test(trial_name, move || {
        let outcome = outcome.recv().unwrap_or_else(|_| {
            Outcome::Failed(
                "the harness never ran this test: its cluster could not be (re)created, see the \
                 log above"
                    .into(),
            )
        });
        results.outcome(&name, &outcome);
        match outcome {
            Outcome::Passed => Ok(Completion::Completed),
            Outcome::Failed(message) if json => Err(json::plain(&message).into()),
            Outcome::Failed(message) => Err(message.into()),
            Outcome::NotRun(reason) => Ok(Completion::ignored_with(reason)),
        }
    })
    .with_kind(kind)
    .with_ignored_flag(case.ignore.is_some())
}

/// The cluster counters of the summary line.
#[derive(Default)]
struct Counts {
    created: u64,
    recreated: u64,
    reused: u64,
    destroyed: u64,
    /// Tests that passed on a retry.
    flaky: u64,
}

/// `provider`: the provider the run's clusters came from, `None` when nothing was provisioned.
fn print_summary(
    args: &Arguments,
    conclusion: &Conclusion,
    counts: Counts,
    provider: Option<&str>,
) {
    let Counts {
        created,
        recreated,
        reused,
        destroyed,
        flaky,
    } = counts;
    let mut line = format!(
        "chaos summary: tests={} passed={} failed={} ignored={} clusters_created={created} \
         clusters_recreated={recreated} clusters_destroyed={destroyed} clusters_reused={reused}",
        conclusion.num_passed + conclusion.num_failed + conclusion.num_ignored,
        conclusion.num_passed,
        conclusion.num_failed,
        conclusion.num_ignored,
    );
    line.push_str(&format!(" flaky={flaky}"));
    if let Some(provider) = provider {
        line.push_str(&format!(" provider={provider}"));
    }
    // With `--format json`, stdout is one JSON event per line for other tools: keep it so.
    match args.format {
        Some(libtest_mimic::FormatSetting::Json) => output::to_stderr(&format!("{line}\n")),
        _ => println!("{line}"),
    }
}

/// As many clusters as fit in three quarters of the memory available now, at least 1.
fn default_max_clusters(per_cluster: u64) -> usize {
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map(|kib| kib * 1024);
    match available {
        Some(bytes) => {
            ((bytes / 4 * 3 / per_cluster.max(1)) as usize).clamp(1, MAX_DEFAULT_CLUSTERS)
        }
        None => 1,
    }
}

/// The cargo command that runs this binary: `cargo test -p PKG --test NAME --` for a test target,
/// `cargo run -p PKG --example NAME --` for an example.
fn reproduce_command(package: Option<&str>) -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let name = crate::timeline::suite_of(&exe);
    let in_examples = exe
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|d| d == "examples");
    let package = package.map(|p| format!(" -p {p}")).unwrap_or_default();
    match in_examples {
        true => format!("cargo run{package} --example {name} --"),
        false => format!("cargo test{package} --test {name} --"),
    }
}

/// Removes every cluster still alive when dropped, so that even a harness that unwinds out of
/// `run` leaks nothing. On the normal path it is the last step of the run.
struct TeardownGuard {
    pool: Arc<Pool>,
    runtime: tokio::runtime::Handle,
    keep: bool,
}

impl Drop for TeardownGuard {
    fn drop(&mut self) {
        if !self.keep {
            self.runtime.block_on(self.pool.destroy_all());
        }
    }
}
