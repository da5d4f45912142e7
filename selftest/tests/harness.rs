//! The harness seen from outside: runs the self-test suites as child processes and asserts on
//! what a user would see (libtest's lines, failure messages, the summary line, the exit code).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The `key=value` pairs of the `chaos summary:` line.
    fn summary(&self) -> BTreeMap<String, u64> {
        let line = self
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("chaos summary: "))
            .unwrap_or_else(|| panic!("no summary line in:\n{}", self.stdout));
        line.split_whitespace()
            .map(|pair| pair.split_once('=').expect("key=value"))
            // Every count; `provider=` names the provider.
            .filter(|(k, _)| *k != "provider")
            .map(|(k, v)| (k.to_owned(), v.parse().expect("a number")))
            .collect()
    }

    /// `(topology label, outcome)` of a test, from libtest's `test [label] name ... outcome` line.
    fn outcome(&self, test: &str) -> Option<(String, String)> {
        self.stdout.lines().find_map(|line| {
            let rest = line.strip_prefix("test [")?;
            let (label, rest) = rest.split_once(']')?;
            let (name, outcome) = rest.split_once(" ... ")?;
            (name.trim() == test).then(|| (label.to_owned(), outcome.trim().to_owned()))
        })
    }

    fn assert_outcome(&self, test: &str, label: &str, outcome: &str) {
        assert_eq!(
            self.outcome(test),
            Some((label.to_owned(), outcome.to_owned())),
            "{test}: {}",
            self.both()
        );
    }

    fn both(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }
}

fn run(exe: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(exe);
    command
        .args(args)
        .env("CHAOS_PROVIDER", "sim")
        .env("CHAOS_SIM_PROVISION_DELAY", "20ms");
    for (k, v) in env {
        command.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("the suite runs");
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

const FAILURES: &str = env!("CARGO_BIN_EXE_selftest-failures");
const LIFECYCLE: &str = env!("CARGO_BIN_EXE_selftest-lifecycle");
const GATED: &str = env!("CARGO_BIN_EXE_selftest-gated");
const SCENARIOS: &str = env!("CARGO_BIN_EXE_scenarios");

#[test]
fn panics_timeouts_and_errors_fail_clearly_and_every_cluster_is_destroyed() {
    let r = run(FAILURES, &[], &[("CHAOS_SEED", "7")]);
    assert_eq!(r.code, Some(101), "{}", r.both());
    let out = &r.stdout;
    r.assert_outcome("a_panics", "1m2w-k8s1.30", "FAILED");
    assert!(
        out.contains("test panicked at selftest/suites/failures.rs:16:5: boom: the test body panicked on purpose"),
        "{}",
        r.both()
    );
    assert!(
        !r.stderr.contains("boom"),
        "the panic is reported once, in the failure: {}",
        r.both()
    );
    r.assert_outcome("b_times_out", "1m2w-k8s1.30", "FAILED");
    assert!(out.contains("test timed out after 1s"), "{}", r.both());
    r.assert_outcome("c_after_failures_cluster_is_healthy", "1m2w-k8s1.30", "ok");
    assert!(
        out.contains("steady state broken on purpose\n\nCaused by:\n  saw 2 nodes, expected 3"),
        "the error and its causes: {}",
        r.both()
    );
    r.assert_outcome("e_passes", "1m1w-k8s1.31", "ok");
    // A bin, not a test target, but the command has the same shape as for `tests/chaos.rs`.
    assert!(
        out.contains("reproduce: CHAOS_SEED=7 CHAOS_PROVIDER=sim cargo test -p chaos-selftest --test selftest-failures -- --exact 'a_panics'"),
        "{}",
        r.both()
    );
    let s = r.summary();
    assert_eq!(
        (s["tests"], s["passed"], s["failed"], s["ignored"]),
        (6, 2, 4, 0),
        "{}",
        r.both()
    );
    assert_eq!(s["clusters_created"], 2, "{}", r.both());
    assert_eq!(
        s["clusters_recreated"],
        0,
        "failed tests on healthy clusters keep them: {}",
        r.both()
    );
    assert_eq!(
        s["clusters_destroyed"],
        s["clusters_created"],
        "{}",
        r.both()
    );
}

#[test]
fn a_broken_cluster_is_replaced_and_a_failed_test_keeps_a_healthy_one() {
    let r = run(LIFECYCLE, &[], &[]);
    assert_eq!(r.code, Some(101), "b fails on purpose: {}", r.both());
    let cluster_of = |marker: &str| -> String {
        let line = r
            .stdout
            .lines()
            .find(|l| l.contains(marker))
            .unwrap_or_else(|| panic!("no `{marker}`: {}", r.both()));
        line.rsplit(' ').next().unwrap().to_owned()
    };
    let (a, b, c) = (
        cluster_of("lifecycle: broke cluster"),
        cluster_of("lifecycle: b got cluster"),
        cluster_of("lifecycle: c got cluster"),
    );
    assert_ne!(a, b, "the broken cluster must not be handed on");
    assert_eq!(b, c, "a healthy cluster is kept after a failed test");
    assert!(
        r.stderr.contains(&format!(
            "cluster {a} is unhealthy after a_breaks_its_cluster"
        )),
        "{}",
        r.both()
    );
    r.assert_outcome("b_gets_a_whole_cluster", "1m2w-k8s1.30", "FAILED");
    let s = r.summary();
    // 1m2w (created, recreated once), 1m1w-k8s1.30, 1m1w-k8s1.31, 1m3w-k8s1.31 (the monkey);
    // the ignored test makes none.
    assert_eq!(
        (
            s["clusters_created"],
            s["clusters_recreated"],
            s["clusters_destroyed"]
        ),
        (5, 1, 5),
        "{}",
        r.both()
    );
    assert_eq!(s["ignored"], 1, "{}", r.both());
}

#[test]
fn a_version_matrix_is_one_test_per_version() {
    let r = run(LIFECYCLE, &["matrix"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    r.assert_outcome("matrix[k8s=1.30]", "1m1w-k8s1.30", "ok");
    r.assert_outcome("matrix[k8s=1.31]", "1m1w-k8s1.31", "ok");
    assert!(
        r.stdout.contains("matrix on 1m1w-k8s1.31 got v1.31.14"),
        "{}",
        r.both()
    );
    assert_eq!(r.summary()["clusters_created"], 2, "{}", r.both());
}

#[test]
fn a_filter_that_selects_one_topology_creates_one_cluster() {
    let r = run(FAILURES, &["1m1w-k8s1.31"], &[]);
    assert_eq!(r.code, Some(101), "d fails on purpose: {}", r.both());
    let s = r.summary();
    assert_eq!(
        (s["tests"], s["clusters_created"], s["clusters_destroyed"]),
        (3, 1, 1),
        "{}",
        r.both()
    );
    assert!(r.stdout.contains("3 filtered out"), "{}", r.both());
}

#[test]
fn exact_runs_one_test_on_one_cluster() {
    let r = run(FAILURES, &["--exact", "e_passes"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert_eq!(
        (r.summary()["tests"], r.summary()["clusters_created"]),
        (1, 1),
        "{}",
        r.both()
    );
}

#[test]
fn list_provisions_nothing() {
    let r = run(FAILURES, &["--list"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert!(
        r.stdout.contains("[1m2w-k8s1.30] a_panics: test"),
        "{}",
        r.both()
    );
    assert!(
        r.stdout.contains("[1m1w-k8s1.31] e_passes: test"),
        "{}",
        r.both()
    );
    assert!(!r.stderr.contains("creating cluster"), "{}", r.both());
    assert!(
        !r.stdout.contains("chaos summary"),
        "--list output stays parseable: {}",
        r.both()
    );
}

#[test]
fn list_orders_each_topology_together_largest_first() {
    let r = run(LIFECYCLE, &["--list"], &[]);
    let labels: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix('[')?.split(']').next())
        .collect();
    // Groups of 3, 1, 1 and 1 (ties by label), then the ignored test, which runs in no group.
    let expected = [
        "1m2w-k8s1.30",
        "1m2w-k8s1.30",
        "1m2w-k8s1.30",
        "1m1w-k8s1.30",
        "1m1w-k8s1.31",
        "1m3w-k8s1.31",
        "1m1w-k8s1.35",
    ];
    assert_eq!(labels, expected, "{}", r.both());
}

#[test]
fn ignored_tests_provision_nothing() {
    let r = run(LIFECYCLE, &["ignored"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    r.assert_outcome("ignored", "1m1w-k8s1.35", "ignored");
    assert_eq!(r.summary()["clusters_created"], 0, "{}", r.both());
}

#[test]
fn the_same_run_seed_gives_every_test_the_same_seed() {
    let seed_line = |r: &Run| {
        r.stdout
            .lines()
            .find(|l| l.starts_with("seed: "))
            .map(str::to_owned)
    };
    let first = run(FAILURES, &["d_returns_an_error"], &[("CHAOS_SEED", "1234")]);
    let again = run(FAILURES, &["d_returns_an_error"], &[("CHAOS_SEED", "1234")]);
    let other = run(FAILURES, &["d_returns_an_error"], &[("CHAOS_SEED", "99")]);
    assert!(
        seed_line(&first).is_some_and(|l| l.ends_with("(run seed 1234)")),
        "{}",
        first.both()
    );
    assert_eq!(seed_line(&first), seed_line(&again));
    assert_ne!(seed_line(&first), seed_line(&other));
}

#[test]
fn bad_settings_are_refused_before_anything_runs() {
    let r = run(FAILURES, &[], &[("CHAOS_MAX_CLUSTERS", "none")]);
    assert_eq!(r.code, Some(2), "{}", r.both());
    assert!(
        r.stderr
            .contains("CHAOS_MAX_CLUSTERS=none is not a whole number of at least 1"),
        "{}",
        r.both()
    );
    assert!(!r.stderr.contains("creating cluster"), "{}", r.both());
}

#[test]
fn max_clusters_one_runs_the_topologies_one_after_another() {
    let r = run(FAILURES, &[], &[("CHAOS_MAX_CLUSTERS", "1")]);
    assert_two_clusters_one_after_the_other(&r);
}

/// The run made its two clusters one after the other: the second after the first was removed.
fn assert_two_clusters_one_after_the_other(r: &Run) {
    let events: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("creating cluster") || l.contains("removed cluster"))
        .collect();
    assert_eq!(events.len(), 4, "{}", r.both());
    assert!(
        events[0].contains("creating") && events[1].contains("removed"),
        "{}",
        r.both()
    );
    assert!(
        events[2].contains("creating") && events[3].contains("removed"),
        "{}",
        r.both()
    );
}

#[test]
fn test_threads_one_makes_one_cluster_at_a_time() {
    // Two topologies; with one test at a time, the second cluster is made after the first is
    // removed, not up front to wait idle.
    let r = run(FAILURES, &["--test-threads", "1"], &[]);
    assert_two_clusters_one_after_the_other(&r);
}

#[test]
fn a_huge_test_threads_runs_the_tests() {
    let r = run(
        FAILURES,
        &["--test-threads", &u64::MAX.to_string(), "e_passes"],
        &[],
    );
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert_eq!(r.summary()["passed"], 1, "{}", r.both());
}

#[test]
fn keep_leaves_clusters_and_says_how_to_reach_them() {
    let r = run(FAILURES, &["e_passes"], &[("CHAOS_KEEP", "1")]);
    let s = r.summary();
    assert_eq!(
        (s["clusters_created"], s["clusters_destroyed"]),
        (1, 0),
        "{}",
        r.both()
    );
    assert!(r.stderr.contains("keeping cluster"), "{}", r.both());
}

#[test]
fn ctrl_c_removes_every_cluster_and_exits_130() {
    let mut child = Command::new(FAILURES)
        .env("CHAOS_PROVIDER", "sim")
        .env("CHAOS_TEST_TIMEOUT", "60s")
        .args(["b_times_out"])
        .env("CHAOS_SIM_PROVISION_DELAY", "10ms")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the suite starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
    let mut seen = String::new();
    // The test waits out its own 1s timeout; interrupt as soon as its cluster is up.
    while !seen.contains("ready after") {
        let mut line = String::new();
        assert_ne!(
            stderr.read_line(&mut line).expect("stderr"),
            0,
            "ended early: {seen}"
        );
        seen.push_str(&line);
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).expect("stderr");
    let status = child.wait().expect("the suite ends");
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    assert!(
        rest.contains("the run was stopped by SIGINT"),
        "{seen}{rest}"
    );
    assert!(rest.contains("removed cluster chaos-"), "{seen}{rest}");
}

#[test]
fn a_gated_suite_reports_ignored_with_the_reason_until_its_variable_is_set() {
    let closed = run(GATED, &[], &[]);
    assert_eq!(closed.code, Some(0), "{}", closed.both());
    closed.assert_outcome(
        "runs_only_when_the_gate_is_open",
        "1m1w-k8s1.35",
        "ignored (set CHAOS_SELFTEST_GATE=sim to run this suite)",
    );
    assert_eq!(
        (
            closed.summary()["ignored"],
            closed.summary()["clusters_created"]
        ),
        (1, 0),
        "{}",
        closed.both()
    );
    assert!(
        !closed.stderr.contains("creating cluster"),
        "{}",
        closed.both()
    );

    let open = run(
        GATED,
        &[],
        &[("CHAOS_SELFTEST_GATE", "sim"), ("CHAOS_PROVIDER", "kind")],
    );
    assert_eq!(
        open.code,
        Some(0),
        "the gate's provider wins over CHAOS_PROVIDER: {}",
        open.both()
    );
    open.assert_outcome("runs_only_when_the_gate_is_open", "1m1w-k8s1.35", "ok");
    assert_eq!(open.summary()["clusters_created"], 1, "{}", open.both());
}

#[test]
fn json_output_stays_one_json_event_per_line_and_the_summary_goes_to_stderr() {
    let r = run(
        FAILURES,
        &["e_passes", "-Z", "unstable-options", "--format", "json"],
        &[],
    );
    assert_eq!(r.code, Some(0), "{}", r.both());
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{}", r.both()))
        })
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "test" && e["event"] == "ok"),
        "{}",
        r.both()
    );
    assert!(
        r.stderr.contains("chaos summary: tests=1 passed=1"),
        "{}",
        r.both()
    );
}

#[test]
fn a_broken_steady_state_names_the_check_what_it_saw_and_the_timeline_file() {
    let r = run(
        FAILURES,
        &["--exact", "f_zero_replicas_never_become_available"],
        &[("CHAOS_SEED", "5")],
    );
    assert_eq!(r.code, Some(101), "{}", r.both());
    let expected = "timed out after 1s waiting for deployment web with at least 1 available replicas; \
                    last seen: deployment web: 0 available, 0 ready, 0 replicas (wanted at least 1 available)";
    assert!(r.stdout.contains(expected), "{}", r.both());
    let path = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("timeline (")?.strip_suffix("):"))
        .unwrap_or_else(|| panic!("no timeline path: {}", r.both()))
        .to_owned();
    assert!(
        path.ends_with(
            "chaos/selftest-failures/f_zero_replicas_never_become_available/timeline.json"
        ),
        "{path}"
    );
    assert!(
        r.stdout.contains("note  deployed web with 0 replicas"),
        "the timeline is printed: {}",
        r.both()
    );

    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("the timeline file exists")).unwrap();
    assert_eq!(file["test"], "f_zero_replicas_never_become_available");
    assert_eq!(file["run_seed"], 5);
    assert!(file["seed"].as_u64().is_some());
    assert!(
        file["reproduce"]
            .as_str()
            .unwrap()
            .starts_with("CHAOS_SEED=5 CHAOS_PROVIDER=sim cargo test"),
        "{file}"
    );
    let kinds: Vec<&str> = file["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["test", "note", "wait", "wait", "test"], "{file}");
    assert!(
        file["outcome"].as_str().unwrap().contains(expected),
        "{file}"
    );
}

#[test]
fn a_passing_test_writes_its_timeline_too() {
    let r = run(FAILURES, &["--exact", "e_passes"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    let path = std::path::Path::new(FAILURES)
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("chaos/selftest-failures/e_passes/timeline.json");
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("written")).unwrap();
    assert_eq!(file["outcome"], "passed", "{file}");
}

#[test]
fn a_seeded_monkey_repeats_its_schedule_and_another_seed_changes_it() {
    let schedule = |seed: &str| {
        let r = run(LIFECYCLE, &["--exact", "monkey"], &[("CHAOS_SEED", seed)]);
        assert_eq!(r.code, Some(0), "{}", r.both());
        let line = r
            .stdout
            .lines()
            .find_map(|l| Some(l.split_once("lifecycle: monkey schedule: ")?.1.to_owned()));
        let line = line.unwrap_or_else(|| panic!("no schedule: {}", r.both()));
        assert!(line.contains("+"), "a schedule with faults: {line}");
        line
    };
    let first = schedule("11");
    assert_eq!(first, schedule("11"), "the same seed, the same schedule");
    assert_ne!(first, schedule("12"), "another seed, another schedule");
}

/// The example suite `cargo run --example scenarios` runs, built from the same source as a binary
/// of this package (see its `Cargo.toml`), so Cargo builds it before it runs this test.
#[test]
fn the_scenario_suite_passes_on_the_sim_with_fewer_clusters_than_tests() {
    let r = run(SCENARIOS, &[], &[]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    let s = r.summary();
    assert_eq!(s["failed"], 0, "{}", r.both());
    assert!(s["tests"] >= 6, "every planned scenario: {}", r.both());
    assert!(
        s["clusters_created"] < s["tests"],
        "clusters are shared: {}",
        r.both()
    );
    assert_eq!(
        s["clusters_destroyed"],
        s["clusters_created"],
        "{}",
        r.both()
    );
    for scenario in [
        "deploy_an_application",
        "app_stays_available_while_workers_die",
        "version_matrix[k8s=1.34]",
        "control_plane_and_workers_on_different_versions",
        "workers_on_different_versions",
        "ha_control_plane_loses_one_and_keeps_serving",
    ] {
        assert!(
            r.outcome(scenario)
                .is_some_and(|(_, outcome)| outcome == "ok"),
            "{scenario}: {}",
            r.both()
        );
    }
}
