//! A test's timeline: every wait, probe verdict, fault, heal step and the outcome, timestamped.
//! Printed when the test fails, and written for every test to
//! `<target>/chaos/<suite>/<test>/timeline.json` with the seed and the command that reproduces it
//! (the suite: the test binary's name, so that two suites with a test of the same name each keep
//! their own).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

/// What an entry is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// The test's start and outcome.
    Test,
    /// A wait: what it waited for, and whether it got there.
    Wait,
    /// A probe's start and verdict.
    Probe,
    /// A fault injected.
    Fault,
    /// A fault undone.
    Heal,
    /// A note of the test's own.
    Note,
}

/// One moment of a test.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// Wall-clock time, RFC 3339.
    pub at: String,
    /// Milliseconds since the test started.
    pub offset_ms: u64,
    /// What the entry is about.
    pub kind: EntryKind,
    /// What happened, in words.
    pub what: String,
}

/// The timeline of one test; shared by everything that acts during it.
pub struct Timeline {
    start: Instant,
    entries: Mutex<Vec<Entry>>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            start: Instant::now(),
            entries: Mutex::default(),
        }
    }
}

impl Timeline {
    /// Adds an entry, stamped now.
    pub fn record(&self, kind: EntryKind, what: impl Into<String>) {
        let entry = Entry {
            at: Timestamp::now().to_string(),
            offset_ms: self.start.elapsed().as_millis() as u64,
            kind,
            what: what.into(),
        };
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry);
    }

    /// A note of the test's own, e.g. "deployed v2".
    pub fn note(&self, what: impl Into<String>) {
        self.record(EntryKind::Note, what);
    }

    /// Every entry so far, oldest first.
    pub fn entries(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One line per entry: `+1.234s wait   3 nodes Ready: reached`.
    pub fn render(&self) -> String {
        self.entries()
            .iter()
            .map(|e| {
                let kind = format!("{:?}", e.kind).to_lowercase();
                format!(
                    "  +{:>7.3}s {kind:<5} {}",
                    e.offset_ms as f64 / 1000.0,
                    e.what
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What the timeline file holds besides the entries.
#[derive(Serialize)]
pub(crate) struct TimelineFile<'a> {
    pub test: &'a str,
    pub cluster: &'a str,
    pub topology: String,
    pub seed: u64,
    pub run_seed: u64,
    pub reproduce: &'a str,
    /// `passed`, or the failure.
    pub outcome: &'a str,
    pub entries: Vec<Entry>,
    /// Each attempt, oldest first (one unless the test was retried).
    pub attempts: Vec<AttemptEntry>,
    /// Passed on a retry.
    pub flaky: bool,
}

/// One attempt of a test, in its timeline file.
#[derive(Serialize)]
pub(crate) struct AttemptEntry {
    /// 1 for the first.
    pub attempt: u32,
    pub seed: u64,
    /// `passed`, or `failed: ` and the failure's first line.
    pub outcome: String,
}

/// `<target>/chaos/<suite>/<test>/timeline.json`, the suite being this test binary's name
/// ([`suite_of`]).
pub(crate) fn path_for(test: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    path_in(&crate::dirs::chaos_dir(), &suite_of(&exe), test)
}

/// `<chaos_dir>/<suite>/<test>/timeline.json`, each part made one safe directory name.
fn path_in(chaos_dir: &Path, suite: &str, test: &str) -> PathBuf {
    chaos_dir
        .join(dir_name(suite))
        .join(dir_name(test))
        .join("timeline.json")
}

/// The suite a test binary runs: its file name without cargo's hash (cargo names test binaries
/// `NAME-<16 hex digits>`); the reproduce command names it too.
pub(crate) fn suite_of(exe: &Path) -> String {
    let stem = exe.file_stem().and_then(|s| s.to_str()).unwrap_or("chaos");
    let name = match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            name
        }
        _ => stem,
    };
    name.to_owned()
}

/// `nodes::kill[k8s=1.29]` -> `nodes.kill_k8s=1.29_`: one directory, nothing outside it.
fn dir_name(name: &str) -> String {
    let dir: String = name
        .replace("::", ".")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._=-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match dir.as_str() {
        // Never the directory itself or its parent.
        "" | "." | ".." => format!("_{dir}"),
        _ => dir,
    }
}

pub(crate) fn write(path: &Path, file: &TimelineFile<'_>) -> anyhow::Result<()> {
    let dir = path.parent().context("a timeline path has a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(path, serde_json::to_vec_pretty(file)?)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_timestamped_in_order_and_rendered_one_per_line() {
        let timeline = Timeline::default();
        timeline.record(EntryKind::Test, "started");
        timeline.note("deployed");
        let entries = timeline.entries();
        assert_eq!(entries.len(), 2);
        assert!(entries[0].offset_ms <= entries[1].offset_ms);
        assert!(
            entries[0].at.parse::<Timestamp>().is_ok(),
            "{}",
            entries[0].at
        );
        let text = timeline.render();
        assert!(
            text.lines().nth(1).unwrap().ends_with("note  deployed"),
            "{text}"
        );
    }

    #[test]
    fn test_names_become_one_directory_under_their_suite() {
        let path = path_for("nodes::kill[k8s=1.29]");
        // This unit-test binary is `chaos_runtime-<hash>`: its suite is `chaos_runtime`.
        assert!(
            path.ends_with("chaos/chaos_runtime/nodes.kill_k8s=1.29_/timeline.json"),
            "{}",
            path.display()
        );
        assert!(path_in(Path::new("/t"), "..", "..").starts_with("/t/_.."));
    }

    #[test]
    fn two_suites_with_a_test_of_the_same_name_keep_two_timelines() {
        let test = "[1m1w-k8s1.35] nodes::kill";
        let dir = Path::new("/target/chaos");
        let faults = path_in(
            dir,
            &suite_of(Path::new("/t/debug/deps/faults-0123456789abcdef")),
            test,
        );
        let kind = path_in(
            dir,
            &suite_of(Path::new("/t/debug/deps/faults_kind-fedcba9876543210")),
            test,
        );
        assert_ne!(faults, kind);
        assert_eq!(
            faults,
            Path::new("/target/chaos/faults/_1m1w-k8s1.35__nodes.kill/timeline.json")
        );
        // An example (no hash) is its own suite, by its name.
        assert_eq!(suite_of(Path::new("/t/debug/examples/smoke")), "smoke");
        assert_eq!(
            suite_of(Path::new("/t/debug/deps/my-suite-xyz")),
            "my-suite-xyz"
        );
    }
}
