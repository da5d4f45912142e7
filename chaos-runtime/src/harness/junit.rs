//! What each test came to, for the summary's `flaky=` and for the JUnit report the harness writes
//! itself (`CHAOS_JUNIT=path`): one test case per test, with its topology, provider, seeds,
//! reproduce command and artifacts directory; a failure's text; a skip's reason; and a flaky
//! test's failed attempts.
//!
//! The XML is quick-junit's (the crate nextest writes its own JUnit with): it escapes and strips
//! what XML cannot hold, and knows the Maven Surefire convention for reruns that CI tools read: a
//! test that passed after failed attempts has one `<flakyFailure>` per failed attempt, and one
//! that failed every attempt has its earlier ones as `<rerunFailure>`
//! (maven.apache.org/surefire/maven-surefire-plugin/examples/rerun-failing-tests.html, and the
//! Surefire XSD it links).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use quick_junit::{
    FlakyOrRerun, NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};

use crate::harness::scheduler::{Outcome, Reproduce};

/// One attempt of a test.
#[derive(Clone, Debug)]
pub(crate) struct Attempt {
    pub seed: u64,
    /// `None`: it passed. Otherwise its failure, in full.
    pub failure: Option<String>,
    pub time: Duration,
}

/// What the scheduler knows of a test it ran.
#[derive(Clone, Debug)]
pub(crate) struct Ran {
    /// Oldest first; the last one decided the test.
    pub attempts: Vec<Attempt>,
    /// The command that reproduces the attempt that decided the test.
    pub reproduce: String,
}

impl Ran {
    /// Passed after at least one failed attempt.
    pub fn is_flaky(&self) -> bool {
        self.attempts
            .last()
            .is_some_and(|last| last.failure.is_none())
            && self.attempts.iter().any(|a| a.failure.is_some())
    }
}

/// Each test's outcome, as its trial received it, and what the scheduler saw of the tests it ran.
#[derive(Default)]
pub(crate) struct Results {
    outcomes: Mutex<HashMap<String, Outcome>>,
    ran: Mutex<HashMap<String, Ran>>,
}

impl Results {
    /// What `test`'s trial reported to libtest.
    pub fn outcome(&self, test: &str, outcome: &Outcome) {
        lock(&self.outcomes).insert(test.to_owned(), outcome.clone());
    }

    /// The attempts of `test`, once it has no more.
    pub fn ran(&self, test: &str, ran: Ran) {
        lock(&self.ran).insert(test.to_owned(), ran);
    }

    /// Tests that passed on a retry.
    pub fn flaky(&self) -> u64 {
        lock(&self.ran).values().filter(|r| r.is_flaky()).count() as u64
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A test as libtest listed it.
pub(crate) struct Case<'a> {
    pub name: &'a str,
    /// The topology's label, `1m2w-k8s1.30`.
    pub topology: String,
    pub file: &'static str,
    pub line: u32,
    /// libtest did not run it: `Some(reason)` for an ignored test (empty: none given).
    pub ignored: Option<&'a str>,
    /// The seed its first attempt has (what `Cluster::seed` gives it).
    pub seed: u64,
}

/// The run as a whole.
pub(crate) struct RunInfo<'a> {
    /// The test binary's name (`chaos`, `scenarios`).
    pub suite: &'a str,
    pub provider: &'a str,
    pub reproduce: &'a Reproduce,
    pub time: Duration,
}

/// The report of a run: one suite, one test case per listed test (filtered-out tests are not
/// part of the run, and are left out).
pub(crate) fn report(run: &RunInfo<'_>, cases: &[Case<'_>], results: &Results) -> Report {
    let outcomes = lock(&results.outcomes);
    let ran = lock(&results.ran);
    let mut suite = TestSuite::new(run.suite);
    suite.add_property(Property::new("provider", run.provider));
    suite.add_property(Property::new(
        "run_seed",
        run.reproduce.run_seed.to_string(),
    ));
    suite.set_time(run.time);
    for case in cases {
        let status = match (outcomes.get(case.name), ran.get(case.name), case.ignored) {
            (Some(outcome), ran, _) => status(outcome, ran),
            (None, _, Some(reason)) => skipped(match reason {
                "" => "ignored",
                reason => reason,
            }),
            (None, _, None) => skipped("not run"),
        };
        suite.add_test_case(test_case(run, case, ran.get(case.name), status));
    }
    let mut report = Report::new(run.suite);
    report.set_time(run.time);
    report.add_test_suite(suite);
    report
}

fn test_case(
    run: &RunInfo<'_>,
    case: &Case<'_>,
    ran: Option<&Ran>,
    status: TestCaseStatus,
) -> TestCase {
    let mut test = TestCase::new(case.name, status);
    test.set_classname(format!("{} [{}]", run.suite, case.topology));
    test.extra.insert("file".into(), case.file.into());
    test.extra
        .insert("line".into(), case.line.to_string().into());
    let seed = ran
        .and_then(|r| r.attempts.last())
        .map_or(case.seed, |a| a.seed);
    let reproduce = match ran {
        Some(ran) => ran.reproduce.clone(),
        None => run.reproduce.line(case.name, run.reproduce.test_seed),
    };
    // The timeline's directory, where a failed test's artifacts go too.
    let artifacts = crate::timeline::path_for(case.name)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let attempts = ran.map_or(0, |r| r.attempts.len());
    test.add_properties([
        Property::new("topology", case.topology.as_str()),
        Property::new("provider", run.provider),
        Property::new("seed", seed.to_string()),
        Property::new("run_seed", run.reproduce.run_seed.to_string()),
        Property::new("reproduce", reproduce),
        Property::new("artifacts", artifacts.display().to_string()),
        Property::new("attempts", attempts.to_string()),
        Property::new("flaky", ran.is_some_and(Ran::is_flaky).to_string()),
    ]);
    if let Some(ran) = ran {
        test.set_time(ran.attempts.iter().map(|a| a.time).sum());
    }
    test
}

fn status(outcome: &Outcome, ran: Option<&Ran>) -> TestCaseStatus {
    let attempts = ran.map_or(&[][..], |r| &r.attempts[..]);
    let count = attempts.len();
    match outcome {
        Outcome::Passed => {
            let mut status = TestCaseStatus::success();
            // Each failed attempt of a test that passed: `<flakyFailure>`.
            status.add_reruns(failed_attempts(attempts, count));
            status
        }
        Outcome::Failed(message) => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(first_line(message))
                .set_description(message.as_str());
            // The attempts before the last, which the failure itself says: `<rerunFailure>`.
            let earlier = attempts.len().saturating_sub(1);
            status
                .add_reruns(failed_attempts(&attempts[..earlier], count))
                .set_rerun_kind(FlakyOrRerun::Rerun);
            status
        }
        Outcome::NotRun(reason) => skipped(reason),
    }
}

fn failed_attempts(attempts: &[Attempt], count: usize) -> Vec<TestRerun> {
    attempts
        .iter()
        .enumerate()
        .filter_map(|(i, attempt)| {
            let failure = attempt.failure.as_deref()?;
            let mut rerun = TestRerun::new(NonSuccessKind::Failure);
            rerun
                .set_message(format!(
                    "attempt {} of {count} (seed {}): {}",
                    i + 1,
                    attempt.seed,
                    first_line(failure)
                ))
                .set_description(failure)
                .set_time(attempt.time);
            Some(rerun)
        })
        .collect()
}

fn skipped(reason: &str) -> TestCaseStatus {
    let mut status = TestCaseStatus::skipped();
    status.set_message(reason);
    status
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// `CHAOS_JUNIT`'s path for this suite: `{suite}` in it is the suite's name, so that the suites
/// of one `cargo test` each keep their report.
pub(crate) fn path_for(setting: &Path, suite: &str) -> PathBuf {
    match setting.to_str() {
        Some(text) if text.contains("{suite}") => PathBuf::from(text.replace("{suite}", suite)),
        _ => setting.to_path_buf(),
    }
}

/// Refuses, before anything is created, a path the report could not be written to: a directory,
/// or one under a file. Creates its parent directories, as the write will.
pub(crate) fn check_writable(path: &Path) -> anyhow::Result<()> {
    let fix = "set CHAOS_JUNIT to a file path in a writable directory";
    if path.is_dir() {
        anyhow::bail!(
            "CHAOS_JUNIT={} is a directory, not a file; {fix}",
            path.display()
        );
    }
    let dir = parent(path);
    std::fs::create_dir_all(dir).map_err(|err| {
        anyhow::anyhow!(
            "CHAOS_JUNIT={}: cannot create its directory {} ({err}); {fix}",
            path.display(),
            dir.display()
        )
    })?;
    // A file of our own beside it, removed at once: the directory takes new files.
    let probe = dir.join(format!(".chaos-junit-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|err| {
        anyhow::anyhow!(
            "CHAOS_JUNIT={}: cannot write in {} ({err}); {fix}",
            path.display(),
            dir.display()
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Writes the report whole or not at all: to a file beside `path`, renamed over it.
pub(crate) fn write(path: &Path, report: &Report) -> anyhow::Result<()> {
    let xml = report
        .to_string()
        .context("the JUnit report could not be serialized")?;
    let dir = parent(path);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path.file_name().context("the path names no file")?;
    let mut partial = name.to_os_string();
    partial.push(format!(".{}.partial", std::process::id()));
    let partial = dir.join(partial);
    std::fs::write(&partial, xml).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).map_err(|err| {
        let _ = std::fs::remove_file(&partial);
        anyhow::anyhow!("renaming {} to it: {err}", partial.display())
    })
}

/// The directory `path` is in (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reproduce() -> Reproduce {
        Reproduce {
            run_seed: 42,
            provider: "sim",
            command: "cargo test --test chaos --".to_owned(),
            test_seed: None,
        }
    }

    fn attempt(seed: u64, failure: Option<&str>) -> Attempt {
        Attempt {
            seed,
            failure: failure.map(str::to_owned),
            time: Duration::from_millis(10),
        }
    }

    fn case<'a>(name: &'a str, ignored: Option<&'a str>) -> Case<'a> {
        Case {
            name,
            topology: "1m1w-k8s1.35".to_owned(),
            file: "tests/chaos.rs",
            line: 7,
            ignored,
            seed: 1,
        }
    }

    #[test]
    fn every_outcome_becomes_one_case_and_a_flaky_test_has_its_failed_attempts() {
        let results = Results::default();
        results.outcome("passes", &Outcome::Passed);
        results.ran(
            "passes",
            Ran {
                attempts: vec![attempt(1, None)],
                reproduce: "r1".to_owned(),
            },
        );
        results.outcome("flaky", &Outcome::Passed);
        results.ran(
            "flaky",
            Ran {
                attempts: vec![attempt(1, Some("boom\nmore")), attempt(2, None)],
                reproduce: "r2".to_owned(),
            },
        );
        results.outcome("fails", &Outcome::Failed("failed on every attempt".into()));
        results.ran(
            "fails",
            Ran {
                attempts: vec![attempt(1, Some("one")), attempt(2, Some("two"))],
                reproduce: "r3".to_owned(),
            },
        );
        results.outcome("stopped", &Outcome::NotRun("not run: stopped".into()));
        let reproduce = reproduce();
        let run = RunInfo {
            suite: "chaos",
            provider: "sim",
            reproduce: &reproduce,
            time: Duration::from_secs(1),
        };
        let cases = [
            case("passes", None),
            case("flaky", None),
            case("fails", None),
            case("stopped", None),
            case("ignored", Some("needs kind")),
        ];
        assert_eq!(results.flaky(), 1);
        let xml = report(&run, &cases, &results).to_string().unwrap();
        let back = Report::deserialize_from_str(&xml).unwrap();
        let suite = &back.test_suites[0];
        assert_eq!(
            (suite.tests, suite.failures, suite.skipped),
            (5, 1, 2),
            "{xml}"
        );
        let by_name = |name: &str| {
            suite
                .test_cases
                .iter()
                .find(|c| c.name.as_str() == name)
                .unwrap()
        };
        let TestCaseStatus::Success { flaky_runs } = &by_name("flaky").status else {
            panic!("{xml}")
        };
        assert_eq!(flaky_runs.len(), 1, "{xml}");
        assert_eq!(
            flaky_runs[0].message.as_ref().unwrap().as_str(),
            "attempt 1 of 2 (seed 1): boom"
        );
        assert!(xml.contains("<flakyFailure"), "{xml}");
        assert!(xml.contains("<rerunFailure"), "{xml}");
        let property = |case: &TestCase, name: &str| {
            case.properties
                .iter()
                .find(|p| p.name.as_str() == name)
                .map(|p| p.value.as_str().to_owned())
        };
        let flaky = by_name("flaky");
        assert_eq!(property(flaky, "seed").as_deref(), Some("2"));
        assert_eq!(property(flaky, "reproduce").as_deref(), Some("r2"));
        assert_eq!(property(flaky, "flaky").as_deref(), Some("true"));
        assert_eq!(
            flaky.classname.as_ref().unwrap().as_str(),
            "chaos [1m1w-k8s1.35]"
        );
        let ignored = by_name("ignored");
        let TestCaseStatus::Skipped { message, .. } = &ignored.status else {
            panic!("an ignored test is skipped: {xml}")
        };
        assert_eq!(message.as_ref().map(|m| m.as_str()), Some("needs kind"));
        assert_eq!(
            property(ignored, "reproduce").as_deref(),
            Some("CHAOS_SEED=42 CHAOS_PROVIDER=sim cargo test --test chaos -- --exact 'ignored'")
        );
    }

    #[test]
    fn suite_in_the_path_is_the_suites_name() {
        assert_eq!(
            path_for(Path::new("target/junit-{suite}.xml"), "chaos"),
            Path::new("target/junit-chaos.xml")
        );
        assert_eq!(
            path_for(Path::new("junit.xml"), "chaos"),
            Path::new("junit.xml")
        );
    }

    #[test]
    fn a_path_that_cannot_be_written_is_refused_with_the_fix() {
        let dir = std::env::temp_dir().join(format!("chaos-junit-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = check_writable(&dir).unwrap_err().to_string();
        assert!(err.contains("is a directory, not a file"), "{err}");
        let file = dir.join("file");
        std::fs::write(&file, b"").unwrap();
        let err = check_writable(&file.join("junit.xml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot create its directory"), "{err}");
        assert!(
            err.ends_with("set CHAOS_JUNIT to a file path in a writable directory"),
            "{err}"
        );
        let good = dir.join("sub/junit.xml");
        check_writable(&good).unwrap();
        write(&good, &Report::new("chaos")).unwrap();
        assert!(
            std::fs::read_to_string(&good)
                .unwrap()
                .contains("<testsuites")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
