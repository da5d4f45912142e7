//! Retries, `flaky=` and the JUnit report, seen from outside: runs `suites/flaky.rs` and the
//! example suite as child processes on the sim and reads back what they print and write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use quick_junit::{Report, TestCase, TestCaseStatus};

const FLAKY: &str = env!("CARGO_BIN_EXE_selftest-flaky");
const SCENARIOS: &str = env!("CARGO_BIN_EXE_scenarios");

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn both(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }

    /// The `key=value` pairs of the `chaos summary:` line, in order.
    fn summary(&self) -> Vec<(String, String)> {
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
        let summary: BTreeMap<_, _> = self.summary().into_iter().collect();
        summary
            .get(key)
            .unwrap_or_else(|| panic!("no {key}= in the summary: {}", self.both()))
            .parse()
            .expect("a number")
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

    /// The seeds a test of the flaky suite said on stderr (stdout has libtest's lines), one per
    /// attempt.
    fn seeds_of(&self, test: &str) -> Vec<u64> {
        let prefix = format!("flaky: {test} attempt seed ");
        self.stderr
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
            .collect()
    }

    /// libtest's failure text of `test`: from its `---- name ----` header to the next.
    fn failure(&self, test: &str) -> String {
        let header = format!("---- {test} ----\n");
        let start = self
            .stdout
            .find(&header)
            .unwrap_or_else(|| panic!("no failure of {test}: {}", self.both()));
        let rest = &self.stdout[start + header.len()..];
        let end = rest
            .find("\n---- ")
            .or_else(|| rest.find("\nfailures:"))
            .unwrap_or(rest.len());
        rest[..end].to_owned()
    }
}

/// A directory of its own for one test, made afresh.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chaos-flaky-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

fn run(exe: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(exe);
    command
        .args(args)
        .env("CHAOS_PROVIDER", "sim")
        .env("CHAOS_SIM_PROVISION_DELAY", "20ms")
        .env_remove("CHAOS_RETRIES")
        .env_remove("CHAOS_JUNIT")
        .env_remove("CHAOS_TEST_SEED");
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

/// The flaky suite with its markers in `dir`.
fn run_flaky(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let markers = dir.join("markers");
    std::fs::create_dir_all(&markers).expect("markers");
    let mut env = env.to_vec();
    env.push(("CHAOS_SELFTEST_FLAKY_DIR", markers.to_str().expect("UTF-8")));
    run(FLAKY, args, &env)
}

fn read_junit(path: &Path, run: &Run) -> Report {
    let xml = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no JUnit at {}: {e}\n{}", path.display(), run.both()));
    Report::deserialize_from_str(&xml)
        .unwrap_or_else(|e| panic!("the JUnit does not parse: {e}\n{xml}"))
}

fn cases(report: &Report) -> Vec<&TestCase> {
    report
        .test_suites
        .iter()
        .flat_map(|s| &s.test_cases)
        .collect()
}

fn property<'a>(case: &'a TestCase, name: &str) -> Option<&'a str> {
    case.properties
        .iter()
        .find(|p| p.name.as_str() == name)
        .map(|p| p.value.as_str())
}

#[test]
fn a_test_that_passes_on_its_second_attempt_is_ok_flaky_and_marked_so_in_junit() {
    let dir = scratch("second-attempt");
    let junit = dir.join("junit.xml");
    let r = run_flaky(
        &dir,
        &["--exact", "fails_first_then_passes"],
        &[
            ("CHAOS_JUNIT", junit.to_str().unwrap()),
            ("CHAOS_SEED", "3"),
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert_eq!(r.outcome("fails_first_then_passes"), "ok", "{}", r.both());
    assert_eq!(
        (r.count("passed"), r.count("failed"), r.count("flaky")),
        (1, 0, 1),
        "{}",
        r.both()
    );
    // `flaky=` stands before `provider=`, which stays last.
    let keys: Vec<String> = r.summary().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys[keys.len() - 2..],
        ["flaky".to_owned(), "provider".to_owned()],
        "{}",
        r.both()
    );
    let seeds = r.seeds_of("fails_first_then_passes");
    assert_eq!(seeds.len(), 2, "two attempts: {}", r.both());
    assert_ne!(seeds[0], seeds[1], "each attempt has its own seed");
    assert!(
        r.stderr
            .contains("fails_first_then_passes: attempt 1 of 2 failed"),
        "{}",
        r.both()
    );

    let report = read_junit(&junit, &r);
    let cases = cases(&report);
    assert_eq!(cases.len(), 1, "one case per test that ran: {report:?}");
    let case = cases[0];
    assert_eq!(case.name.as_str(), "fails_first_then_passes");
    assert_eq!(
        case.classname.as_ref().map(|c| c.as_str()),
        Some("selftest-flaky [1m1w-k8s1.31]")
    );
    let TestCaseStatus::Success { flaky_runs } = &case.status else {
        panic!("a flaky test passed: {case:?}")
    };
    assert_eq!(flaky_runs.len(), 1, "{case:?}");
    let message = flaky_runs[0].message.as_ref().unwrap().as_str();
    assert_eq!(
        message,
        format!(
            "attempt 1 of 2 (seed {}): the first attempt fails on purpose",
            seeds[0]
        )
    );
    assert_eq!(property(case, "flaky"), Some("true"));
    assert_eq!(property(case, "attempts"), Some("2"));
    assert_eq!(property(case, "seed"), Some(seeds[1].to_string().as_str()));
    assert_eq!(property(case, "run_seed"), Some("3"));
    assert_eq!(property(case, "provider"), Some("sim"));
    assert_eq!(property(case, "topology"), Some("1m1w-k8s1.31"));
    let artifacts = property(case, "artifacts").expect("an artifacts path");
    assert!(
        artifacts.ends_with("chaos/selftest-flaky/fails_first_then_passes"),
        "{artifacts}"
    );

    // The timeline file records each attempt with its seed and outcome.
    let timeline: serde_json::Value = serde_json::from_slice(
        &std::fs::read(Path::new(artifacts).join("timeline.json")).expect("the timeline"),
    )
    .unwrap();
    assert_eq!(timeline["flaky"], true, "{timeline}");
    let attempts = timeline["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2, "{timeline}");
    assert_eq!(attempts[0]["seed"], seeds[0]);
    assert_eq!(
        attempts[0]["outcome"],
        "failed: the first attempt fails on purpose"
    );
    assert_eq!(attempts[1]["seed"], seeds[1]);
    assert_eq!(attempts[1]["outcome"], "passed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn retries_two_that_always_fail_fail_with_three_attempts_said_and_the_last_reproducible() {
    let dir = scratch("always");
    let junit = dir.join("junit.xml");
    let r = run_flaky(
        &dir,
        &["--exact", "fails_every_attempt"],
        &[
            ("CHAOS_JUNIT", junit.to_str().unwrap()),
            ("CHAOS_SEED", "9"),
        ],
    );
    assert_eq!(r.code, Some(101), "{}", r.both());
    assert_eq!(r.outcome("fails_every_attempt"), "FAILED");
    assert_eq!(
        (r.count("failed"), r.count("flaky")),
        (1, 0),
        "{}",
        r.both()
    );
    let failure = r.failure("fails_every_attempt");
    let lines: Vec<&str> = failure.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], "failed all 3 attempts:", "{failure}");
    let seeds: Vec<u64> = (1..=3)
        .map(|n| {
            let prefix = format!("  attempt {n} (seed ");
            let line = lines[n]
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("attempt {n}: {failure}"));
            let (seed, rest) = line.split_once("): ").unwrap();
            assert_eq!(rest, format!("fails on purpose with seed {seed}"));
            seed.parse().unwrap()
        })
        .collect();
    assert!(seeds[0] != seeds[1] && seeds[1] != seeds[2], "{seeds:?}");
    assert!(
        failure.contains(&format!(
            "attempt 3 of 3 in full:\nfails on purpose with seed {}",
            seeds[2]
        )),
        "{failure}"
    );
    // The seed and the command are those of the attempt that failed last.
    assert!(
        failure.contains(&format!(
            "seed: {} (attempt 3 of 3; test seed {}, run seed 9)",
            seeds[2], seeds[0]
        )),
        "{failure}"
    );
    let reproduce = format!(
        "reproduce: CHAOS_SEED=9 CHAOS_TEST_SEED={} CHAOS_PROVIDER=sim cargo test -p chaos-selftest \
         --test selftest-flaky -- --exact 'fails_every_attempt'",
        seeds[2]
    );
    assert!(failure.contains(&reproduce), "{failure}");

    // The reproduce line gives the first attempt the seed that failed last.
    let again = run_flaky(
        &dir,
        &["--exact", "fails_every_attempt"],
        &[
            ("CHAOS_SEED", "9"),
            ("CHAOS_TEST_SEED", &seeds[2].to_string()),
        ],
    );
    assert!(
        again.failure("fails_every_attempt").contains(&format!(
            "  attempt 1 (seed {0}): fails on purpose with seed {0}",
            seeds[2]
        )),
        "{}",
        again.both()
    );

    let report = read_junit(&junit, &r);
    let cases = cases(&report);
    assert_eq!(cases.len(), 1);
    let TestCaseStatus::NonSuccess {
        message, reruns, ..
    } = &cases[0].status
    else {
        panic!("failed: {:?}", cases[0])
    };
    assert_eq!(message.as_ref().unwrap().as_str(), "failed all 3 attempts:");
    assert_eq!(reruns.runs.len(), 2, "the two earlier attempts");
    assert_eq!(property(cases[0], "flaky"), Some("false"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn chaos_retries_applies_to_tests_without_the_key_and_the_attribute_wins() {
    let without = scratch("without");
    let r = run_flaky(&without, &["fails_once_without_the_key"], &[]);
    assert_eq!(
        r.outcome("fails_once_without_the_key"),
        "FAILED",
        "{}",
        r.both()
    );
    assert_eq!(r.seeds_of("fails_once_without_the_key").len(), 1);

    let with = scratch("with");
    let r = run_flaky(&with, &[], &[("CHAOS_RETRIES", "1")]);
    assert_eq!(
        r.outcome("fails_once_without_the_key"),
        "ok",
        "{}",
        r.both()
    );
    assert_eq!(r.seeds_of("fails_once_without_the_key").len(), 2);
    assert_eq!(r.outcome("fails_first_then_passes"), "ok");
    // `retries = 0` and `retries = 2` win over CHAOS_RETRIES=1.
    assert_eq!(r.outcome("never_retried"), "FAILED", "{}", r.both());
    assert!(
        r.failure("never_retried")
            .trim_start()
            .starts_with("the first attempt fails on purpose"),
        "{}",
        r.both()
    );
    assert!(
        r.failure("fails_every_attempt")
            .contains("failed all 3 attempts:"),
        "{}",
        r.both()
    );
    // A cluster that cannot be healed between attempts is recreated, as between tests.
    assert_eq!(r.outcome("breaks_its_cluster_first"), "ok", "{}", r.both());
    let clusters: Vec<&str> = r
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("flaky: breaks_its_cluster_first on "))
        .collect();
    assert_eq!(clusters.len(), 2, "{}", r.both());
    assert!(
        r.stderr.contains(&format!(
            "cluster {} is unhealthy after attempt 1 of 2 of breaks_its_cluster_first",
            clusters[0]
        )),
        "{}",
        r.both()
    );
    assert_eq!(r.count("clusters_recreated"), 1, "{}", r.both());
    assert_eq!(
        r.count("clusters_created"),
        r.count("clusters_destroyed"),
        "{}",
        r.both()
    );
    // fails_first_then_passes, fails_once_without_the_key, breaks_its_cluster_first.
    assert_eq!(r.count("flaky"), 3, "{}", r.both());
    assert_eq!(r.count("failed"), 2, "{}", r.both());
    let _ = std::fs::remove_dir_all(&without);
    let _ = std::fs::remove_dir_all(&with);
}

#[test]
fn junit_has_one_case_per_listed_test_with_skips_and_failures() {
    let dir = scratch("suite");
    // `{suite}` is the suite's name; the directory does not exist yet.
    let junit = dir.join("reports/junit-{suite}.xml");
    let r = run_flaky(&dir, &[], &[("CHAOS_JUNIT", junit.to_str().unwrap())]);
    assert_eq!(r.code, Some(101), "{}", r.both());
    let report = read_junit(&dir.join("reports/junit-selftest-flaky.xml"), &r);
    let cases = cases(&report);
    assert_eq!(cases.len() as u64, r.count("tests"), "{report:?}");
    let outcome = |name: &str| {
        &cases
            .iter()
            .find(|c| c.name.as_str() == name)
            .unwrap_or_else(|| panic!("no case {name}"))
            .status
    };
    assert!(
        matches!(outcome("passes"), TestCaseStatus::Success { flaky_runs } if flaky_runs.is_empty())
    );
    assert!(matches!(
        outcome("ignored"),
        TestCaseStatus::Skipped { message: Some(m), .. } if m.as_str() == "shows a skipped case"
    ));
    let TestCaseStatus::NonSuccess { description, .. } = outcome("never_retried") else {
        panic!("never_retried fails")
    };
    let description = description.as_ref().unwrap().as_str();
    assert!(
        description.starts_with("the first attempt fails on purpose")
            && description.contains("reproduce: CHAOS_SEED="),
        "the failure text in full: {description}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn junit_from_the_scenario_suite_parses_with_one_case_per_test() {
    let dir = scratch("scenarios");
    let junit = dir.join("junit.xml");
    let r = run(SCENARIOS, &[], &[("CHAOS_JUNIT", junit.to_str().unwrap())]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    let report = read_junit(&junit, &r);
    let cases = cases(&report);
    assert_eq!(cases.len() as u64, r.count("tests"), "{report:?}");
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "one case per test");
    assert!(names.contains(&"version_matrix[k8s=1.34]"), "{names:?}");
    for case in &cases {
        for key in [
            "topology",
            "provider",
            "seed",
            "run_seed",
            "reproduce",
            "artifacts",
        ] {
            assert!(property(case, key).is_some(), "{key} of {case:?}");
        }
        let topology = property(case, "topology").unwrap();
        assert_eq!(
            case.classname.as_ref().unwrap().as_str(),
            format!("scenarios [{topology}]")
        );
        assert!(
            property(case, "reproduce")
                .unwrap()
                .ends_with(&format!("--exact '{}'", case.name.as_str())),
            "{case:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_junit_path_that_cannot_be_written_is_one_line_and_a_failed_run_not_a_panic() {
    let dir = scratch("unwritable");
    let file = dir.join("a-file");
    std::fs::write(&file, b"").unwrap();
    // Known before anything is created: refused at once.
    let under_a_file = file.join("junit.xml");
    let r = run_flaky(
        &dir,
        &["--exact", "passes"],
        &[("CHAOS_JUNIT", under_a_file.to_str().unwrap())],
    );
    assert_eq!(r.code, Some(2), "{}", r.both());
    let said: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("CHAOS_JUNIT"))
        .collect();
    assert_eq!(said.len(), 1, "{}", r.both());
    assert!(
        said[0].ends_with("set CHAOS_JUNIT to a file path in a writable directory"),
        "{}",
        r.both()
    );
    assert!(!r.stderr.contains("creating cluster"), "{}", r.both());
    assert!(!r.stderr.contains("panicked"), "{}", r.both());

    // Found only at the end (the path became a directory during the run): said, and the run fails.
    let junit = dir.join("junit.xml");
    let r = run_flaky(
        &dir,
        &["--exact", "passes"],
        &[
            ("CHAOS_JUNIT", junit.to_str().unwrap()),
            ("CHAOS_SELFTEST_MKDIR", junit.to_str().unwrap()),
        ],
    );
    assert_eq!(r.outcome("passes"), "ok", "{}", r.both());
    assert_eq!(r.code, Some(101), "{}", r.both());
    let said: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("could not write the JUnit report"))
        .collect();
    assert_eq!(said.len(), 1, "{}", r.both());
    assert!(said[0].contains("(CHAOS_JUNIT)"), "{}", r.both());
    assert!(!r.stderr.contains("panicked"), "{}", r.both());
    let _ = std::fs::remove_dir_all(&dir);
}
