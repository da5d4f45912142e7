//! Sharding across CI machines (`CHAOS_PARTITION=hash:K/N` and `count:K/N`): runs
//! `suites/shards.rs` (five topologies, nine tests) as child processes on the sim, one per shard,
//! and checks that the shards together run every test exactly once and that no topology's cluster
//! is created on two shards.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chaos_runtime::__shard::{Mode, ShardGroup, assign};

const SHARDS: &str = env!("CARGO_BIN_EXE_selftest-shards");

/// Longest a run of the suite may take: it has nine quick tests on the sim.
const RUN_LIMIT: Duration = Duration::from_secs(120);

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn both(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }

    /// `(label, name)` of every test libtest reports an outcome for (`test [label] name ... x`).
    fn reported(&self) -> Vec<(String, String)> {
        self.stdout
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("test [")?;
                let (label, rest) = rest.split_once("] ")?;
                let (name, _) = rest.split_once(" ... ")?;
                // libtest pads names to one width.
                Some((label.to_owned(), name.trim().to_owned()))
            })
            .collect()
    }

    /// The label of every cluster the run created (`creating cluster NAME [LABEL] on ...`).
    fn created(&self) -> Vec<String> {
        self.stderr
            .lines()
            .filter(|line| line.contains("creating cluster") && !line.contains("still creating"))
            .filter_map(|line| {
                let (_, rest) = line.split_once('[')?;
                Some(rest.split_once(']')?.0.to_owned())
            })
            .collect()
    }

    /// A count from the `chaos summary:` line.
    fn summary(&self, key: &str) -> u64 {
        let line = self
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("chaos summary: "))
            .unwrap_or_else(|| panic!("no summary line: {}", self.both()));
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key}= in {line}"))
    }
}

/// Runs the suite on the sim with `env`, and without any `CHAOS_PARTITION` of the caller's.
fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(SHARDS);
    command
        .args(args)
        .env("CHAOS_PROVIDER", "sim")
        .env("CHAOS_SIM_PROVISION_DELAY", "20ms")
        .env_remove("CHAOS_PARTITION")
        .env_remove("CHAOS_LIST_TOPOLOGIES")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("the suite starts");
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("piped")));
    let stderr = read(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("the suite can be waited for") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the suite ({args:?}, {env:?}) did not end within {RUN_LIMIT:?}; stderr:\n{}",
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: stdout.join().expect("stdout read"),
        stderr: stderr.join().expect("stderr read"),
    }
}

/// Every test of the suite as `(label, name)`, from `--list` (`[label] name: test`).
fn every_test() -> BTreeSet<(String, String)> {
    let r = run(&["--list"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    r.stdout
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix('[')?.strip_suffix(": test")?;
            let (label, name) = rest.split_once("] ")?;
            Some((label.to_owned(), name.to_owned()))
        })
        .collect()
}

/// The suite's topologies as `cargo chaos plan --shards` reads them.
fn topologies() -> Vec<ShardGroup> {
    let r = run(&["--list"], &[("CHAOS_LIST_TOPOLOGIES", "1")]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    r.stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// Runs `mode:1/2` and `mode:2/2` and checks, between them: every test reported exactly once, no
/// topology created twice, each shard creating only what it runs and running what the
/// assignment (the one `cargo chaos plan --shards` prints) gives it.
fn two_shards_run_every_test_once(mode: &str, assignment: Mode) {
    let all = every_test();
    assert_eq!(all.len(), 9, "{all:?}");
    let groups = topologies();
    assert_eq!(
        groups.iter().map(|g| g.tests.len()).sum::<usize>(),
        all.len(),
        "{groups:?}"
    );
    let planned = assign(assignment, 2, &groups);

    let mut reported_anywhere: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut created_by_shard = Vec::new();
    for shard in 1..=2u64 {
        let partition = format!("{mode}:{shard}/2");
        let r = run(&[], &[("CHAOS_PARTITION", &partition)]);
        assert_eq!(r.code, Some(0), "{partition}: {}", r.both());
        let reported = r.reported();
        assert!(
            !reported.is_empty(),
            "{partition} runs nothing, so this test would show nothing: {}",
            r.both()
        );
        for test in &reported {
            *reported_anywhere.entry(test.clone()).or_default() += 1;
        }
        // The shard runs the topologies the assignment gives it, and only those.
        let labels: BTreeSet<&str> = reported.iter().map(|(l, _)| l.as_str()).collect();
        let mine: BTreeSet<&str> = groups
            .iter()
            .zip(&planned)
            .filter(|(_, s)| **s == shard)
            .map(|(g, _)| g.label.as_str())
            .collect();
        assert_eq!(labels, mine, "{partition}: {}", r.both());
        // It creates a cluster for each topology it runs a test of (the ignored test's needs
        // none), and for nothing else.
        let created = r.created();
        let created_set: BTreeSet<String> = created.iter().cloned().collect();
        assert_eq!(created.len(), created_set.len(), "{}", r.both());
        let ran: BTreeSet<String> = reported
            .iter()
            .filter(|(_, name)| name != "ignored")
            .map(|(label, _)| label.clone())
            .collect();
        assert_eq!(created_set, ran, "{partition}: {}", r.both());
        // libtest counts the other shard's tests as filtered out; the summary counts this one's.
        let others = all.len() - reported.len();
        assert!(
            r.stdout.contains(&format!("; {others} filtered out;")),
            "{partition}: {}",
            r.both()
        );
        assert_eq!(r.summary("tests"), reported.len() as u64, "{}", r.both());
        assert_eq!(r.summary("failed"), 0, "{}", r.both());
        assert!(
            r.stderr.contains(&format!(
                "chaos: CHAOS_PARTITION={partition}: this shard runs {} of 5 topologies ({} of 9 \
                 tests)",
                mine.len(),
                reported.len()
            )),
            "{}",
            r.both()
        );
        created_by_shard.push(created_set);
    }
    let once: BTreeSet<(String, String)> = reported_anywhere.keys().cloned().collect();
    assert_eq!(
        once, all,
        "every test is reported by one shard or the other"
    );
    assert!(
        reported_anywhere.values().all(|n| *n == 1),
        "a test ran on both shards: {reported_anywhere:?}"
    );
    let both: Vec<&String> = created_by_shard[0]
        .intersection(&created_by_shard[1])
        .collect();
    assert!(both.is_empty(), "created on both shards: {both:?}");
}

#[test]
fn hash_shards_together_run_every_test_once_and_create_no_topology_twice() {
    two_shards_run_every_test_once("hash", Mode::Hash);
}

#[test]
fn count_shards_together_run_every_test_once_and_create_no_topology_twice() {
    two_shards_run_every_test_once("count", Mode::Count);
}

/// The split is computed over every test of the binary: a name filter narrows what a shard runs
/// but moves no topology to another shard.
#[test]
fn a_filter_narrows_a_shard_without_changing_the_split() {
    let whole = run(&[], &[("CHAOS_PARTITION", "count:1/2")]).reported();
    let filtered = run(&["matrix"], &[("CHAOS_PARTITION", "count:1/2")]);
    assert_eq!(filtered.code, Some(0), "{}", filtered.both());
    let expected: Vec<(String, String)> = whole
        .into_iter()
        .filter(|(_, name)| name.starts_with("matrix"))
        .collect();
    let mut got = filtered.reported();
    got.sort();
    let mut expected = expected;
    expected.sort();
    assert_eq!(got, expected, "{}", filtered.both());
}

#[test]
fn a_bad_partition_is_one_line_exit_2_and_nothing_created() {
    for (bad, says) in [
        ("hash:0/2", "there is no shard 0"),
        ("hash:3/2", "shard 3 of 2 does not exist"),
        ("count:1/0", "there are no shards in count:K/0"),
        ("3/2", "does not start with hash: or count:"),
        ("foo", "does not start with hash: or count:"),
        ("hash:one/2", "is not K/N with two whole numbers"),
    ] {
        let r = run(&[], &[("CHAOS_PARTITION", bad)]);
        assert_eq!(r.code, Some(2), "{bad}: {}", r.both());
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{bad}: one line: {}", r.both());
        assert!(
            lines[0].starts_with(&format!("chaos: error: CHAOS_PARTITION={bad}: "))
                && lines[0].contains(says),
            "{bad}: {}",
            r.both()
        );
        assert!(r.created().is_empty(), "{}", r.both());
        assert!(!r.stdout.contains("running"), "{}", r.both());
    }
}
