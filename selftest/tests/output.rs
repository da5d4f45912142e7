//! What a run prints, seen from outside: whole lines when stdout and stderr are one pipe (a
//! terminal, a CI log), progress lines in CI, a probe that fails its test at the break, and
//! `--format json` names and failures. Runs `suites/output.rs` as a child process on the sim.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const OUTPUT: &str = env!("CARGO_BIN_EXE_selftest-output");

/// The longest a run of the suite may take here (its slowest selection takes seconds).
const RUN_LIMIT: Duration = Duration::from_secs(180);

struct Merged {
    code: Option<i32>,
    /// stdout and stderr as they came, through one pipe.
    text: String,
    took: Duration,
}

fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(OUTPUT);
    command
        .args(args)
        .env("CHAOS_PROVIDER", "sim")
        .env("CHAOS_SIM_PROVISION_DELAY", "20ms")
        .env("RUST_BACKTRACE", "0")
        .env_remove("CI")
        .env_remove("CHAOS_PROGRESS_EVERY");
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

/// Runs the suite with stdout and stderr into one pipe, as a terminal or a CI log has them.
fn run_merged(args: &[&str], env: &[(&str, &str)]) -> Merged {
    let (mut reader, writer) = std::io::pipe().expect("a pipe");
    let mut command = command(args, env);
    command
        .stdin(Stdio::null())
        .stdout(writer.try_clone().expect("a second write end"))
        .stderr(writer);
    let start = Instant::now();
    let mut child = command.spawn().expect("the suite starts");
    drop(command); // Our copies of the write end: the read ends when the child's do.
    let (send, read) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = reader.read_to_string(&mut text);
        let _ = send.send(text);
    });
    let Ok(text) = read.recv_timeout(RUN_LIMIT) else {
        let _ = child.kill();
        panic!("the suite did not end within {RUN_LIMIT:?}: {args:?}");
    };
    let status = child.wait().expect("the suite's status");
    Merged {
        code: status.code(),
        text,
        took: start.elapsed(),
    }
}

/// No `chaos:` line inside another line, and every test line whole: `test [label] name ... ok`.
fn assert_whole_lines(text: &str) {
    for line in text.lines() {
        if let Some(at) = line.find("chaos:") {
            assert_eq!(
                at, 0,
                "a `chaos:` line inside another: {line:?}\n---\n{text}"
            );
        }
        if let Some(at) = line.find("output: ") {
            assert_eq!(at, 0, "a test's line inside another: {line:?}\n---\n{text}");
        }
        if line.contains(" ... ") || line.contains("test [") {
            assert!(
                line.starts_with("test [")
                    && ["ok", "FAILED", "ignored"]
                        .iter()
                        .any(|end| line.ends_with(end)),
                "a test line not whole: {line:?}\n---\n{text}"
            );
        }
    }
}

fn test_lines(text: &str) -> usize {
    text.lines().filter(|l| l.starts_with("test [")).count()
}

#[test]
fn lines_are_whole_when_stdout_and_stderr_are_one_pipe() {
    // Progress lines every 50 ms: many `chaos:` lines while tests run and their lines are printed.
    let env = [("CI", "true"), ("CHAOS_PROGRESS_EVERY", "50ms")];
    let select = ["--skip", "probe", "--skip", "fails_in_colour"];
    // One test thread: libtest-mimic would print `test NAME ... ` and end the line only once the
    // test ended, with everything the harness said meanwhile inside it.
    for threads in [&["--test-threads", "1"][..], &[]] {
        let args: Vec<&str> = select.iter().chain(threads).copied().collect();
        let r = run_merged(&args, &env);
        assert_eq!(r.code, Some(0), "{args:?}\n{}", r.text);
        assert_whole_lines(&r.text);
        assert_eq!(test_lines(&r.text), 4, "{args:?}\n{}", r.text);
        assert!(
            r.text.lines().any(|l| l.starts_with("chaos: running: ")),
            "progress lines came while tests ran: {}",
            r.text
        );
        assert_eq!(
            r.text.lines().filter(|l| l.starts_with("output: ")).count(),
            60,
            "every line the tests printed: {}",
            r.text
        );
    }
}

#[test]
fn ci_gets_a_progress_line_every_period_while_a_test_runs() {
    let r = run_merged(
        &["--exact", "slow"],
        &[("CI", "true"), ("CHAOS_PROGRESS_EVERY", "1s")],
    );
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert_whole_lines(&r.text);
    let progress: Vec<&str> = r
        .text
        .lines()
        .filter(|l| l.starts_with("chaos: running: [1m2w-k8s1.31] slow ("))
        .collect();
    // The test runs 2.5 s: lines at about 1 s and 2 s.
    assert!(progress.len() >= 2, "{progress:?}\n---\n{}", r.text);
    assert!(
        progress.iter().any(|l| l.ends_with("slow (1s)")),
        "{progress:?}"
    );

    // `0` turns them off.
    let r = run_merged(
        &["--exact", "slow"],
        &[("CI", "true"), ("CHAOS_PROGRESS_EVERY", "0s")],
    );
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert!(!r.text.contains("chaos: running:"), "{}", r.text);
}

#[test]
fn a_probe_fails_its_test_at_the_break_and_not_a_minute_later() {
    let r = run_merged(&["probe"], &[("CHAOS_SEED", "3")]);
    assert_eq!(r.code, Some(101), "{}", r.text);
    assert_whole_lines(&r.text);
    // The body sleeps 60 s after the break before it would call `finish()`.
    assert!(
        r.took < Duration::from_secs(40),
        "the run took {:?}: the test was not stopped at the break\n{}",
        r.took,
        r.text
    );
    let line = |name: &str| {
        r.text
            .lines()
            .find(|l| l.starts_with("test [") && l.contains(name))
            .unwrap_or_else(|| panic!("no line for {name}: {}", r.text))
            .to_owned()
    };
    assert!(
        line("probe_stops_the_test_at_the_break").ends_with(" ... FAILED"),
        "{}",
        r.text
    );
    assert!(
        line("probe_lets_the_test_run_on_when_told").ends_with(" ... ok"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("output: the test ran on after the break"),
        "{}",
        r.text
    );
    let failure = r
        .text
        .split("---- probe_stops_the_test_at_the_break ----")
        .nth(1)
        .unwrap_or_else(|| panic!("no failure text: {}", r.text));
    assert!(
        failure.starts_with(
            "\nalways-probe `deployment web keeps at least 1 available replicas` broke "
        ) && failure.contains("it saw: deployment web: 0 available")
            && failure.contains("the test was stopped at the break"),
        "{failure}"
    );
    // The timeline has the break when it was seen: after the scale-down, before the failure.
    let timeline: Vec<&str> = failure
        .lines()
        .skip_while(|l| !l.starts_with("timeline ("))
        .take_while(|l| !l.is_empty())
        .collect();
    let at = |what: &str| {
        timeline
            .iter()
            .position(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no `{what}` in the timeline: {timeline:#?}"))
    };
    assert!(
        at("note  scaled web to 0 replicas") < at("replicas` broke ")
            && at("probe always-probe `deployment web keeps at least 1 available replicas` broke ")
                < at("test  failed: always-probe"),
        "{timeline:#?}"
    );
}

#[test]
fn json_names_carry_the_topology_and_failures_are_plain_text() {
    let output = command(
        &["--format", "json", "--skip", "probe", "--skip", "slow"],
        &[],
    )
    .stdin(Stdio::null())
    .output()
    .expect("the suite runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    let both = format!("--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert_eq!(output.status.code(), Some(101), "{both}");
    // The tests' own lines (`output: ...`) are on stdout too, as libtest-mimic does not capture.
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| !l.starts_with("output: "))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{both}")))
        .collect();
    let names: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "test" && e["event"] == "started")
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}\n{both}");
    for (name, label) in [
        ("chatter_a", "1m2w-k8s1.30"),
        ("chatter_b", "1m1w-k8s1.30"),
        ("chatter_c", "1m3w-k8s1.30"),
        ("fails_in_colour", "1m2w-k8s1.30"),
    ] {
        let full = format!("[{label}] {name}");
        assert!(names.contains(&full.as_str()), "no {full}: {names:?}");
    }
    let failed = events
        .iter()
        .find(|e| e["event"] == "failed")
        .unwrap_or_else(|| panic!("no failed event: {both}"));
    assert_eq!(failed["name"], "[1m2w-k8s1.30] fails_in_colour", "{both}");
    let text = failed["stdout"].as_str().unwrap_or_default();
    assert!(text.contains("red and green on purpose"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a JSON failure: {text:?}"
    );

    // The reproduce command's `--exact NAME` still selects the test under JSON.
    let output = command(&["--format", "json", "--exact", "fails_in_colour"], &[])
        .stdin(Stdio::null())
        .output()
        .expect("the suite runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(r#""name": "[1m2w-k8s1.30] fails_in_colour""#)
            && stdout.contains(r#""test_count": 1"#),
        "{stdout}"
    );
}
