//! `cargo chaos plan --shards N --suite PATH`: which shard of `CHAOS_PARTITION=count:K/N` and of
//! `hash:K/N` runs each topology of a suite, with its modelled cost. The suite binary lists its
//! own topologies (`CHAOS_LIST_TOPOLOGIES=1 <suite> --list`, one JSON line each), and the
//! assignment is computed by the function the harness itself uses, over the same list: what this
//! prints is what each shard runs.

use std::fmt::Write as _;
use std::io::{ErrorKind, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chaos_runtime::__shard::{CREATE_PER_NODE, Mode, PER_TEST, ShardGroup, assign};

use crate::Failure;

/// Longest a suite may take to list its topologies: it creates nothing, so this is generous.
const LIST_LIMIT: Duration = Duration::from_secs(60);

pub(crate) fn run(shards: u64, suite: &Path) -> Result<(), Failure> {
    let groups = topologies(suite)?;
    let tests: usize = groups.iter().map(|g| g.tests.len()).sum();
    let mut out = format!(
        "{}: {}, {}; modelled cost = {CREATE_PER_NODE} per node + {PER_TEST} per test\n",
        suite.display(),
        count(groups.len(), "topology", "topologies"),
        count(tests, "test", "tests"),
    );
    for (mode, name, how) in [
        (Mode::Count, "count", "balanced by modelled cost"),
        (
            Mode::Hash,
            "hash",
            "by a stable hash of each topology's label",
        ),
    ] {
        let _ = writeln!(out, "\nCHAOS_PARTITION={name}:K/{shards} ({how})");
        let assigned = assign(mode, shards, &groups);
        for shard in 1..=shards {
            let mine: Vec<&ShardGroup> = groups
                .iter()
                .zip(&assigned)
                .filter(|(_, s)| **s == shard)
                .map(|(g, _)| g)
                .collect();
            let cost: u64 = mine.iter().map(|g| g.cost()).sum();
            let tests: usize = mine.iter().map(|g| g.tests.len()).sum();
            let what = match mine.is_empty() {
                true => "nothing: creates no cluster".to_owned(),
                false => mine
                    .iter()
                    .map(|g| format!("{} ({} nodes, {})", g.label, g.nodes, tests_of(g)))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let _ = writeln!(
                out,
                "  {name}:{shard}/{shards}  cost {cost}  tests {tests}  {what}"
            );
        }
    }
    crate::print(&out)
}

/// `1 test`, `3 tests`.
fn tests_of(group: &ShardGroup) -> String {
    count(group.tests.len(), "test", "tests")
}

/// `n` things, in the singular for 1.
fn count(n: usize, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

/// The suite's topologies, from the suite.
fn topologies(suite: &Path) -> Result<Vec<ShardGroup>, Failure> {
    let shown = suite.display();
    let mut child = Command::new(suite)
        .arg("--list")
        .env("CHAOS_LIST_TOPOLOGIES", "1")
        // The split is over every test, whatever shard this shell is in.
        .env_remove("CHAOS_PARTITION")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| match err.kind() {
            ErrorKind::NotFound => Failure::Input(format!(
                "--suite {shown}: no such file; give the path of a built suite, as `cargo test \
                 --no-run --test NAME` prints it"
            )),
            _ => Failure::Input(format!("--suite {shown}: cannot run it: {err}")),
        })?;
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + LIST_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failure::Input(format!(
                    "--suite {shown} did not list its topologies within {}s; it was stopped (is \
                     it a chaos suite?)",
                    LIST_LIMIT.as_secs()
                )));
            }
            Err(err) => return Err(Failure::Other(err.into())),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        let said = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(Failure::Input(format!(
            "--suite {shown} failed to list its topologies ({status}): {said}"
        )));
    }
    let not_a_suite = |what: &str| {
        Failure::Input(format!(
            "--suite {shown} is not a chaos suite of this chaos-runtime: {what}; give a test \
             binary whose main is chaos_runtime::main!"
        ))
    };
    let groups = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            serde_json::from_str::<ShardGroup>(line)
                .map_err(|_| not_a_suite(&format!("it printed `{line}`")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if groups.is_empty() {
        return Err(Failure::Input(format!(
            "--suite {shown} lists no topology: it has no #[chaos_test], or is not a chaos suite"
        )));
    }
    Ok(groups)
}
