//! Bad input fails the run, on every provider, before anything is created: runs the input suite
//! and the failures suite as child processes and asserts on the exit code, the one error line,
//! and that no cluster (nor kind) was touched. `auto` falls back to the sim only for the
//! environment, and a run on the sim says what it does not prove.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::process::{Command, Output};

const INPUT: &str = env!("CARGO_BIN_EXE_selftest-input");
const FAILURES: &str = env!("CARGO_BIN_EXE_selftest-failures");

/// The sim's banner, as `chaos: sim: ...` on stderr.
const BANNER: &str = "chaos: sim: no container runs here, so images, probes and the app itself \
     are not exercised; CHAOS_PROVIDER=kind runs them";

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// Every command line the stand-in `kind` was run with, one a line.
    kind_calls: String,
}

impl Run {
    fn both(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }

    /// Exit 2, with one line on stderr, `chaos: error: ...`, that starts with `error`; nothing
    /// ran: no test, no run seed, no summary, and kind was never run.
    fn assert_refused(&self, error: &str) {
        assert_eq!(self.code, Some(2), "{}", self.both());
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {}", self.both());
        assert!(
            lines[0].starts_with(&format!("chaos: error: {error}")),
            "{}",
            self.both()
        );
        assert!(!self.stdout.contains("chaos summary:"), "{}", self.both());
        assert!(!self.stdout.contains(" ... ok"), "{}", self.both());
        assert_eq!(self.kind_calls, "", "kind was run: {}", self.both());
    }
}

/// A directory of this test's own under cargo's temporary directory, empty.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("input-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `exe` with `args` and `env` over a clean `CHAOS_*` environment, ownership records in a
/// scratch directory, and `CHAOS_KIND` a `kind` that logs its command line and fails (so that
/// `auto` never makes a real cluster, and falls back to the sim for the environment).
fn run(name: &str, exe: &str, args: &[&str], env: &[(&str, OsString)]) -> Run {
    let dir = scratch(name);
    let kind = dir.join("kind");
    let log = dir.join("kind-calls");
    std::fs::write(
        &kind,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\necho 'kind: not really here' >&2\nexit 1\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&kind, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut command = Command::new(exe);
    command.args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CHAOS_") {
            command.env_remove(key);
        }
    }
    command
        .env("CHAOS_KIND", &kind)
        .env("CHAOS_STATE_DIR", dir.join("state"))
        .env("CHAOS_SIM_PROVISION_DELAY", "10ms");
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
        kind_calls: std::fs::read_to_string(&log).unwrap_or_default(),
    }
}

fn text(value: &str) -> OsString {
    value.into()
}

#[test]
fn an_unknown_version_fails_the_run_on_auto_and_on_the_sim_and_names_the_versions() {
    for provider in ["auto", "sim"] {
        let r = run(
            &format!("unknown-version-{provider}"),
            INPUT,
            &["unknown_version"],
            &[("CHAOS_PROVIDER", text(provider))],
        );
        r.assert_refused(
            "Kubernetes 1.99 has no kind node image; kind has images of 1.37, 1.36, 1.35, 1.34, \
             1.33, 1.32, 1.31, 1.30, 1.29, 1.28, 1.27, 1.26 (`cargo chaos versions` lists their \
             patches), or pin one: CHAOS_KIND_IMAGES=1.99=kindest/node:<tag>@sha256:<digest>",
        );
        assert!(!r.stderr.contains("run seed"), "{}", r.both());
    }
    let r = run(
        "unknown-patch",
        INPUT,
        &["unknown_patch"],
        &[("CHAOS_PROVIDER", text("sim"))],
    );
    r.assert_refused(
        "Kubernetes 1.29.3 has no kind node image; the images of 1.29 are 1.29.14, 1.29.12, \
         1.29.10 (write 1.29 for the newest)",
    );
}

#[test]
fn a_pin_makes_a_version_known_on_the_sim_too() {
    let r = run(
        "pinned-version",
        INPUT,
        &["unknown_version"],
        &[
            ("CHAOS_PROVIDER", text("sim")),
            (
                "CHAOS_KIND_IMAGES",
                text("1.99=my.registry:5000/node:v1.99.0"),
            ),
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.both());
}

#[test]
fn a_bad_kind_images_pin_fails_the_run_instead_of_falling_back_to_the_sim() {
    for provider in ["auto", "sim"] {
        let r = run(
            &format!("bad-pins-{provider}"),
            INPUT,
            &["--exact", "known_version"],
            &[
                ("CHAOS_PROVIDER", text(provider)),
                ("CHAOS_KIND_IMAGES", text("1.35:kindest/node:v1.35.8")),
            ],
        );
        r.assert_refused(
            "CHAOS_KIND_IMAGES: `1.35:kindest/node:v1.35.8` is not VERSION=IMAGE; write \
             comma-separated VERSION=IMAGE pairs",
        );
    }
}

#[test]
fn kind_input_fails_auto_before_kind_is_looked_for() {
    let r = run(
        "bad-kind-switch",
        INPUT,
        &["--exact", "known_version"],
        &[
            ("CHAOS_PROVIDER", text("auto")),
            ("CHAOS_KIND_STANDIN", text("maybe")),
        ],
    );
    r.assert_refused(
        "CHAOS_PROVIDER=auto, provider kind: CHAOS_KIND_STANDIN=maybe is not a switch; use 1 or 0",
    );
    // A shape kind cannot make: not a reason to run it on the sim instead...
    let r = run(
        "join-skew-auto",
        INPUT,
        &["kind_join_skew"],
        &[("CHAOS_PROVIDER", text("auto"))],
    );
    r.assert_refused(
        "CHAOS_PROVIDER=auto, provider kind: a 1.30 node cannot join a 1.32 control plane on kind",
    );
    // ...though the sim, chosen by name, makes it (both versions have kind images).
    let r = run(
        "join-skew-sim",
        INPUT,
        &["kind_join_skew"],
        &[("CHAOS_PROVIDER", text("sim"))],
    );
    assert_eq!(r.code, Some(0), "{}", r.both());
}

#[test]
fn auto_falls_back_to_the_sim_for_the_environment_and_the_sim_says_what_it_does_not_prove() {
    let r = run(
        "fallback",
        INPUT,
        &["--exact", "known_version"],
        &[("CHAOS_PROVIDER", text("auto"))],
    );
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert!(
        r.stderr.contains(
            "chaos: provider sim (in-memory Kubernetes API), because kind cannot run here"
        ),
        "{}",
        r.both()
    );
    assert!(r.kind_calls.starts_with("version"), "{}", r.both());
    let banner: Vec<&str> = r.stderr.lines().filter(|l| *l == BANNER).collect();
    assert_eq!(banner.len(), 1, "{}", r.both());
    // Chosen, not fallen back to: the banner still.
    let r = run(
        "sim-banner",
        INPUT,
        &["--exact", "known_version"],
        &[("CHAOS_PROVIDER", text("sim"))],
    );
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert!(r.stderr.lines().any(|l| l == BANNER), "{}", r.both());
    assert!(!r.stderr.contains("cannot run here"), "{}", r.both());
}

#[test]
fn settings_that_are_not_unicode_huge_or_zero_fail_with_one_line_and_exit_2() {
    let not_unicode = || OsString::from_vec(b"4\xff".to_vec());
    let cases: Vec<(&str, OsString, String)> = vec![
        (
            "CHAOS_MAX_CLUSTERS",
            not_unicode(),
            "CHAOS_MAX_CLUSTERS is set to bytes that are not valid Unicode".into(),
        ),
        (
            "CHAOS_SEED",
            not_unicode(),
            "CHAOS_SEED is set to bytes that are not valid Unicode".into(),
        ),
        (
            "CHAOS_KEEP",
            not_unicode(),
            "CHAOS_KEEP is set to bytes that are not valid Unicode".into(),
        ),
        (
            "CHAOS_MAX_CLUSTERS",
            text("18446744073709551615"),
            "CHAOS_MAX_CLUSTERS=18446744073709551615 is more than 1024".into(),
        ),
        (
            "CHAOS_TEST_TIMEOUT",
            text("0s"),
            "CHAOS_TEST_TIMEOUT is zero, which would fail every test before it starts".into(),
        ),
        (
            "CHAOS_TEST_TIMEOUT",
            text("18446744073709551615s"),
            "CHAOS_TEST_TIMEOUT=18446744073709551615s is longer than a year (1y)".into(),
        ),
        (
            "CHAOS_SIM_NODE_GRACE",
            text("18446744073709551615s"),
            "CHAOS_SIM_NODE_GRACE=18446744073709551615s is longer than a year (1y)".into(),
        ),
        (
            "CHAOS_SIM_POD_START",
            text("18446744073709551615s"),
            "CHAOS_SIM_POD_START=18446744073709551615s is longer than a year (1y)".into(),
        ),
    ];
    for (index, (key, value, error)) in cases.into_iter().enumerate() {
        let r = run(
            &format!("settings-{index}"),
            FAILURES,
            &["e_passes"],
            &[(key, value)],
        );
        r.assert_refused(&error);
    }
}
