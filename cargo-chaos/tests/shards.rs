//! `cargo chaos plan --shards N --suite PATH`, run against fake suites: scripts that answer
//! `CHAOS_LIST_TOPOLOGIES=1 <suite> --list` as a chaos suite does (one JSON line per topology), or
//! badly. (`chaos-selftest`'s `tests/shards.rs` checks a real suite's list and that its shards run
//! what the same assignment gives them.)
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Five topologies of modelled costs 70, 160, 70, 120 and 110 (20 per node, 30 per test).
const TOPOLOGIES: &str = r#"{"label":"1m1w-k8s1.30","nodes":2,"tests":["matrix[k8s=1.30]"]}
{"label":"1m1w-k8s1.31","nodes":2,"tests":["a_one","a_three","a_two","matrix[k8s=1.31]"]}
{"label":"1m1w-k8s1.35","nodes":2,"tests":["ignored"]}
{"label":"1m2w-k8s1.30","nodes":3,"tests":["b_one","b_two"]}
{"label":"1m3w-k8s1.31","nodes":4,"tests":["c_one"]}"#;

/// The fake suites, written once before any test starts a process (a script still open for
/// writing in a forked child makes exec fail with "text file busy").
struct Suites {
    good: PathBuf,
    /// Prints a libtest list, as a suite that is not a chaos suite would.
    not_chaos: PathBuf,
    /// Fails, saying why on stderr.
    failing: PathBuf,
}

fn suites() -> &'static Suites {
    static SUITES: OnceLock<Suites> = OnceLock::new();
    SUITES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cargo-chaos-shards");
        std::fs::create_dir_all(&dir).unwrap();
        let script = |name: &str, body: &str| {
            let path = dir.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        };
        Suites {
            // It answers only the question cargo chaos must ask, and only if no CHAOS_PARTITION
            // of the caller's reaches it.
            good: script(
                "good",
                &format!(
                    "[ \"$CHAOS_LIST_TOPOLOGIES\" = 1 ] && [ \"$*\" = --list ] && \
                     [ -z \"$CHAOS_PARTITION\" ] || {{ echo \"asked: $* \
                     CHAOS_PARTITION=$CHAOS_PARTITION\" >&2; exit 3; }}\ncat <<'EOF'\n{TOPOLOGIES}\nEOF"
                ),
            ),
            not_chaos: script("not-chaos", "echo 'tests::it_works: test'"),
            failing: script("failing", "echo 'error: CHAOS_SEED=x is not a whole number' >&2\nexit 2"),
        }
    })
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    suites();
    let output = Command::new(env!("CARGO_BIN_EXE_cargo-chaos"))
        .args(args)
        .env("CHAOS_PARTITION", "hash:1/2")
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn shards_prints_both_assignments_with_their_modelled_cost() {
    let good = path(&suites().good);
    let r = run(&["plan", "--shards", "2", "--suite", good]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let expected = format!(
        "{good}: 5 topologies, 9 tests; modelled cost = 20 per node + 30 per test

CHAOS_PARTITION=count:K/2 (balanced by modelled cost)
  count:1/2  cost 300  tests 6  1m1w-k8s1.30 (2 nodes, 1 test), 1m1w-k8s1.31 (2 nodes, 4 tests), 1m1w-k8s1.35 (2 nodes, 1 test)
  count:2/2  cost 230  tests 3  1m2w-k8s1.30 (3 nodes, 2 tests), 1m3w-k8s1.31 (4 nodes, 1 test)

CHAOS_PARTITION=hash:K/2 (by a stable hash of each topology's label)
  hash:1/2  cost 70  tests 1  1m1w-k8s1.30 (2 nodes, 1 test)
  hash:2/2  cost 460  tests 8  1m1w-k8s1.31 (2 nodes, 4 tests), 1m1w-k8s1.35 (2 nodes, 1 test), 1m2w-k8s1.30 (3 nodes, 2 tests), 1m3w-k8s1.31 (4 nodes, 1 test)
"
    );
    assert_eq!(r.stdout, expected);
}

#[test]
fn more_shards_than_topologies_leaves_some_empty_and_says_so() {
    let r = run(&["plan", "--shards", "6", "--suite", path(&suites().good)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // count: one topology per shard, the costliest first; the sixth shard gets nothing.
    assert!(
        r.stdout
            .contains("  count:1/6  cost 160  tests 4  1m1w-k8s1.31 (2 nodes, 4 tests)\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("  count:6/6  cost 0  tests 0  nothing: creates no cluster\n"),
        "{}",
        r.stdout
    );
}

/// Bad input is one `error:` line and exit code 2, as for the rest of `cargo chaos`.
#[test]
fn bad_input_is_one_line_and_exit_code_2() {
    let suites = suites();
    let missing = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-suite");
    for (args, says) in [
        (
            vec!["plan", "--shards", "2", "--suite", path(&missing)],
            "no such file; give the path of a built suite".to_owned(),
        ),
        (
            vec!["plan", "--shards", "2", "--suite", path(&suites.not_chaos)],
            "is not a chaos suite of this chaos-runtime: it printed `tests::it_works: test`"
                .to_owned(),
        ),
        (
            vec!["plan", "--shards", "2", "--suite", path(&suites.failing)],
            "failed to list its topologies (exit status: 2): error: CHAOS_SEED=x is not a whole \
             number"
                .to_owned(),
        ),
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", r.stderr);
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(&says),
            "{args:?}: {}",
            r.stderr
        );
    }
    // clap's own usage errors: exit code 2 too.
    for args in [
        vec!["plan", "--shards", "0", "--suite", path(&suites.good)],
        vec!["plan", "--shards", "2"],
        vec!["plan", "--suite", path(&suites.good)],
        vec![
            "plan",
            "--shards",
            "2",
            "--suite",
            path(&suites.good),
            "--masters",
            "3",
        ],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.starts_with("error: "), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
    }
}
