//! How a run ends when tests or the user end it badly: signals, bodies that block their thread,
//! a test that calls `exit`, tasks a test leaves behind, and a kept cluster. Each runs
//! `suites/endings.rs` as a child process on the sim and asserts on its exit code, its summary and
//! what it says is left.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ENDINGS: &str = env!("CARGO_BIN_EXE_selftest-endings");

/// A child run of the suite, its stderr read line by line as it comes.
struct ChildRun {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: String,
    stdout: std::thread::JoinHandle<String>,
}

impl ChildRun {
    fn start(args: &[&str], env: &[(&str, &str)]) -> ChildRun {
        let mut command = Command::new(ENDINGS);
        command
            .args(args)
            .env("CHAOS_PROVIDER", "sim")
            .env("CHAOS_SIM_PROVISION_DELAY", "10ms")
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("the suite starts");
        let stderr = child.stderr.take().expect("piped");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stdout = child.stdout.take().expect("piped");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        ChildRun {
            child,
            lines,
            stderr: String::new(),
            stdout,
        }
    }

    /// Reads stderr until a line contains `text`; panics after `within`.
    fn wait_for(&mut self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stderr.push_str(&line);
                    self.stderr.push('\n');
                    if line.contains(text) {
                        return;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "waited {within:?} for `{text}` on stderr; saw:\n{}",
                        self.stderr
                    );
                }
            }
        }
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
    }

    /// Waits for the process to end, at most `within` (then kills it and fails).
    fn finish(mut self, within: Duration) -> Ended {
        let deadline = Instant::now() + within;
        let code = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                    self.stderr.push_str(&line);
                    self.stderr.push('\n');
                }
                panic!(
                    "the run did not end within {within:?}; stderr:\n{}",
                    self.stderr
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.stderr.push_str(&line);
            self.stderr.push('\n');
        }
        Ended {
            code,
            stdout: self.stdout.join().expect("stdout reader"),
            stderr: self.stderr,
        }
    }
}

struct Ended {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ended {
    fn both(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }

    /// The `key=value` pairs of the `chaos summary:` line.
    fn summary(&self) -> BTreeMap<String, String> {
        let line = self
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("chaos summary: "))
            .unwrap_or_else(|| panic!("no summary line in:\n{}", self.both()));
        line.split_whitespace()
            .map(|pair| {
                let (k, v) = pair.split_once('=').expect("key=value");
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    fn count(&self, key: &str) -> u64 {
        self.summary()[key].parse().expect("a number")
    }

    /// libtest's outcome for `test`: `ok`, `FAILED`, `ignored, <reason>`.
    fn outcome(&self, test: &str) -> String {
        self.stdout
            .lines()
            .find_map(|line| {
                let rest = line.strip_prefix("test [")?;
                let (_, rest) = rest.split_once(']')?;
                let (name, outcome) = rest.split_once(" ... ")?;
                (name.trim() == test).then(|| outcome.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no outcome for {test}:\n{}", self.both()))
    }

    /// Every cluster made was removed.
    fn assert_nothing_left(&self) {
        assert_eq!(
            self.count("clusters_created"),
            self.count("clusters_destroyed"),
            "{}",
            self.both()
        );
    }
}

#[test]
fn bodies_that_block_their_thread_still_time_out_and_fail() {
    let run = ChildRun::start(&["block_"], &[]).finish(Duration::from_secs(60));
    for test in ["block_1", "block_2", "block_3", "block_4", "block_5"] {
        assert_eq!(run.outcome(test), "FAILED", "{}", run.both());
    }
    assert!(
        run.stdout.contains("test timed out after 2s"),
        "{}",
        run.both()
    );
    assert_eq!(run.code, Some(101), "{}", run.both());
    assert_eq!(run.count("failed"), 6, "{}", run.both());
    run.assert_nothing_left();
}

#[test]
fn a_body_blocked_for_an_hour_does_not_keep_the_process_alive_after_the_summary() {
    // The test times out after 2 s; its thread sleeps on. The process must end right after.
    let run =
        ChildRun::start(&["--exact", "block_for_an_hour"], &[]).finish(Duration::from_secs(30));
    assert_eq!(run.code, Some(101), "{}", run.both());
    assert_eq!(run.outcome("block_for_an_hour"), "FAILED");
    run.assert_nothing_left();
}

#[test]
fn sigint_while_a_body_blocks_its_thread_is_handled_at_once() {
    let mut child = ChildRun::start(&["--exact", "blocked_until_a_signal"], &[]);
    child.wait_for("inside blocked_until_a_signal", Duration::from_secs(30));
    child.signal("INT");
    let run = child.finish(Duration::from_secs(20));
    assert_eq!(run.code, Some(130), "{}", run.both());
    assert!(
        run.stdout.contains("stopped by SIGINT while it ran"),
        "{}",
        run.both()
    );
    run.assert_nothing_left();
}

#[test]
fn a_test_that_calls_exit_zero_fails_the_run_after_teardown() {
    let run = ChildRun::start(&["--exact", "exit_zero"], &[]).finish(Duration::from_secs(30));
    assert_eq!(run.code, Some(101), "{}", run.both());
    assert!(
        run.stderr
            .contains("test `exit_zero` called `exit` (std::process::exit?)"),
        "{}",
        run.both()
    );
    assert_eq!(run.count("failed"), 1, "{}", run.both());
    assert_eq!(run.count("clusters_created"), 1, "{}", run.both());
    run.assert_nothing_left();
}

#[test]
fn sigint_during_creation_stops_it_and_runs_nothing() {
    let mut child = ChildRun::start(
        &["wait_for_a_signal"],
        &[("CHAOS_SIM_PROVISION_DELAY", "60s")],
    );
    child.wait_for("creating cluster", Duration::from_secs(30));
    child.signal("INT");
    let run = child.finish(Duration::from_secs(20));
    assert_eq!(run.code, Some(130), "{}", run.both());
    assert!(
        run.stderr
            .contains("SIGINT: stopping the creation of cluster"),
        "{}",
        run.both()
    );
    assert_eq!(
        run.outcome("wait_for_a_signal"),
        "ignored (not run: the run was stopped by SIGINT)"
    );
    assert_eq!(run.count("clusters_created"), 0, "{}", run.both());
    run.assert_nothing_left();
}

#[test]
fn sigterm_during_a_test_stops_it_removes_the_cluster_and_exits_143() {
    let mut child = ChildRun::start(&["--exact", "wait_for_a_signal"], &[]);
    child.wait_for("inside wait_for_a_signal", Duration::from_secs(30));
    child.signal("TERM");
    let run = child.finish(Duration::from_secs(20));
    assert_eq!(run.code, Some(143), "{}", run.both());
    assert!(
        run.stdout.contains("stopped by SIGTERM while it ran"),
        "{}",
        run.both()
    );
    assert_eq!(run.count("clusters_created"), 1, "{}", run.both());
    run.assert_nothing_left();
}

#[test]
fn sighup_is_handled_like_sigterm() {
    let mut child = ChildRun::start(&["--exact", "wait_for_a_signal"], &[]);
    child.wait_for("inside wait_for_a_signal", Duration::from_secs(30));
    child.signal("HUP");
    let run = child.finish(Duration::from_secs(20));
    assert_eq!(run.code, Some(129), "{}", run.both());
    assert_eq!(run.count("clusters_created"), 1, "{}", run.both());
    run.assert_nothing_left();
}

#[test]
fn a_second_sigint_during_a_slow_teardown_exits_at_once_naming_what_is_left() {
    let mut child = ChildRun::start(
        &["--exact", "wait_for_a_signal"],
        &[("CHAOS_SIM_TEARDOWN_DELAY", "10m")],
    );
    child.wait_for("inside wait_for_a_signal", Duration::from_secs(30));
    child.signal("INT");
    child.wait_for("SIGINT: starting nothing new", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    child.signal("INT");
    let run = child.finish(Duration::from_secs(10));
    assert_eq!(run.code, Some(130), "{}", run.both());
    let said = run
        .stderr
        .lines()
        .find(|l| l.contains("SIGINT again: exiting now; left behind: cluster(s) chaos-1m1w-"))
        .unwrap_or_else(|| panic!("{}", run.both()));
    assert!(said.contains("`cargo chaos gc` removes them"), "{said}");
}

#[test]
fn keep_is_honoured_on_a_signal() {
    let mut child = ChildRun::start(&["--exact", "wait_for_a_signal"], &[("CHAOS_KEEP", "1")]);
    child.wait_for("inside wait_for_a_signal", Duration::from_secs(30));
    child.signal("INT");
    let run = child.finish(Duration::from_secs(20));
    assert_eq!(run.code, Some(130), "{}", run.both());
    assert!(run.stderr.contains("keeping cluster"), "{}", run.both());
    assert_eq!(run.count("clusters_destroyed"), 0, "{}", run.both());
}

#[test]
fn tasks_a_test_spawned_end_with_it() {
    // The first test spawns a task that cordons a worker 1.5 s later; the second watches the
    // nodes for 3 s on the same cluster.
    let run = ChildRun::start(&["late_task_"], &[]).finish(Duration::from_secs(60));
    assert_eq!(run.outcome("late_task_1_spawns_a_cordon"), "ok");
    assert_eq!(
        run.outcome("late_task_2_every_node_stays_schedulable"),
        "ok",
        "{}",
        run.both()
    );
    assert!(!run.stderr.contains("late cordon sent"), "{}", run.both());
    assert_eq!(run.code, Some(0), "{}", run.both());
}

#[test]
fn the_last_tests_cluster_is_healed_before_it_is_kept() {
    let run = ChildRun::start(
        &["--exact", "leave_a_worker_paused"],
        &[("CHAOS_KEEP", "1")],
    )
    .finish(Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{}", run.both());
    assert!(run.stderr.contains("keeping cluster"), "{}", run.both());
    let timeline = find_timeline("leave_a_worker_paused");
    let text = std::fs::read_to_string(&timeline).expect("the timeline is written");
    assert!(text.contains("undone: pause"), "{text}");
    assert!(text.contains("cluster healed and healthy"), "{text}");
}

#[test]
fn what_a_test_changes_outside_its_namespace_is_put_back_before_the_next_test() {
    let run = ChildRun::start(&["dirty_"], &[]).finish(Duration::from_secs(60));
    assert_eq!(
        run.outcome("dirty_2_finds_the_cluster_as_handed_out"),
        "ok",
        "{}",
        run.both()
    );
    assert_eq!(run.code, Some(0), "{}", run.both());
    assert_eq!(run.count("clusters_recreated"), 0, "{}", run.both());
    let timeline = find_timeline("dirty_1_changes_the_cluster_outside_its_namespace");
    let text = std::fs::read_to_string(&timeline).expect("the timeline is written");
    assert!(text.contains("put back: "), "{text}");
}

#[test]
fn a_cluster_that_cannot_be_put_back_is_recreated() {
    let run = ChildRun::start(&["broken_"], &[]).finish(Duration::from_secs(60));
    assert_eq!(
        run.outcome("broken_2_gets_a_whole_cluster"),
        "ok",
        "{}",
        run.both()
    );
    assert!(
        run.stderr
            .contains("is unhealthy after broken_1_deletes_a_system_namespace")
            && run.stderr.contains("kube-node-lease"),
        "{}",
        run.both()
    );
    assert_eq!(run.count("clusters_recreated"), 1, "{}", run.both());
    assert_eq!(run.code, Some(0), "{}", run.both());
    run.assert_nothing_left();
}

/// The newest `.../<test>/timeline.json` under the target directory's `chaos` folder.
fn find_timeline(test: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_BIN_EXE_selftest-endings"))
        .ancestors()
        .nth(2)
        .expect("target dir")
        .join("chaos");
    let mut found: Vec<PathBuf> = Vec::new();
    let mut dirs = vec![target.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.ends_with(format!("{test}/timeline.json")) {
                found.push(path);
            }
        }
    }
    found
        .into_iter()
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| panic!("no timeline of {test} under {}", target.display()))
}

#[test]
fn an_interrupted_run_still_writes_its_junit_report() {
    let dir = std::env::temp_dir().join(format!("chaos-endings-junit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let junit = dir.join("junit.xml");
    let mut child = ChildRun::start(
        &["--exact", "wait_for_a_signal"],
        &[("CHAOS_JUNIT", junit.to_str().expect("UTF-8"))],
    );
    child.wait_for("inside wait_for_a_signal", Duration::from_secs(30));
    child.signal("INT");
    let run = child.finish(Duration::from_secs(20));
    assert_eq!(run.code, Some(130), "{}", run.both());
    let xml = std::fs::read_to_string(&junit)
        .unwrap_or_else(|e| panic!("no JUnit report ({e}): {}", run.both()));
    let report = quick_junit::Report::deserialize_from_str(&xml)
        .unwrap_or_else(|e| panic!("the JUnit does not parse ({e}): {xml}"));
    let cases: Vec<_> = report
        .test_suites
        .iter()
        .flat_map(|s| &s.test_cases)
        .collect();
    assert_eq!(cases.len(), 1, "{xml}");
    assert_eq!(cases[0].name.as_str(), "wait_for_a_signal");
    assert!(
        matches!(
            &cases[0].status,
            quick_junit::TestCaseStatus::NonSuccess { message: Some(m), .. }
                if m.as_str() == "stopped by SIGINT while it ran"
        ),
        "{xml}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
