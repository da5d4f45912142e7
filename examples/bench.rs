//! How much cluster sharing saves: runs the scenario suite three ways and prints a table.
//!
//! `cargo build --examples && cargo run --example bench [-- <provision delay, default 3s>]`
//!
//! On the sim, with its provisioning delay standing in for kind's creation time, it compares:
//! - pooled and parallel (the harness's default),
//! - pooled, one cluster at a time (`CHAOS_MAX_CLUSTERS=1`),
//! - one cluster per test, each test run on its own as the tool this replaces did.
//!
//! The machine is shared and noisy: read the ratios within one run, not the seconds across runs.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

struct Row {
    mode: &'static str,
    tests: u64,
    clusters: u64,
    wall: Duration,
}

fn main() -> anyhow::Result<()> {
    let delay = std::env::args().nth(1).unwrap_or_else(|| "3s".to_owned());
    let scenarios = scenarios_binary()?;
    let names = list(&scenarios)?;
    let mut rows = Vec::new();

    let (tests, clusters, wall) = run(&scenarios, &delay, &[], &[])?;
    rows.push(Row {
        mode: "pooled, parallel (default)",
        tests,
        clusters,
        wall,
    });
    let (tests, clusters, wall) = run(&scenarios, &delay, &[("CHAOS_MAX_CLUSTERS", "1")], &[])?;
    rows.push(Row {
        mode: "pooled, one cluster at a time",
        tests,
        clusters,
        wall,
    });
    let mut alone = Row {
        mode: "one cluster per test",
        tests: 0,
        clusters: 0,
        wall: Duration::ZERO,
    };
    for name in &names {
        let (tests, clusters, wall) = run(&scenarios, &delay, &[], &["--exact", name])?;
        alone.tests += tests;
        alone.clusters += clusters;
        alone.wall += wall;
    }
    rows.push(alone);

    let baseline = rows[2].wall.as_secs_f64();
    println!("scenario suite on the sim, provisioning delay {delay} per cluster\n");
    println!("| mode | tests | clusters | wall (s) | vs one cluster per test |");
    println!("|---|---|---|---|---|");
    for row in &rows {
        let wall = row.wall.as_secs_f64();
        println!(
            "| {} | {} | {} | {wall:.1} | {:.2}x |",
            row.mode,
            row.tests,
            row.clusters,
            baseline / wall
        );
    }
    Ok(())
}

/// `target/<profile>/examples/scenarios`, beside this example.
fn scenarios_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("scenarios");
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: run `cargo build --examples` first",
        path.display()
    );
    Ok(path)
}

/// The names of the suite's tests.
fn list(scenarios: &PathBuf) -> anyhow::Result<Vec<String>> {
    let out = Command::new(scenarios).arg("--list").output()?;
    let text = String::from_utf8(out.stdout)?;
    Ok(text
        .lines()
        .filter_map(|l| Some(l.split_once("] ")?.1.strip_suffix(": test")?.to_owned()))
        .collect())
}

/// Runs the suite on the sim; returns (tests, clusters created, wall time).
fn run(
    scenarios: &PathBuf,
    delay: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> anyhow::Result<(u64, u64, Duration)> {
    let start = Instant::now();
    let out = Command::new(scenarios)
        .args(args)
        .env("CHAOS_PROVIDER", "sim")
        .env("CHAOS_SIM_PROVISION_DELAY", delay)
        .envs(env.iter().copied())
        .output()?;
    let wall = start.elapsed();
    let stdout = String::from_utf8(out.stdout)?;
    anyhow::ensure!(
        out.status.success(),
        "the suite failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout
        .lines()
        .find_map(|l| l.strip_prefix("chaos summary: "))
        .ok_or_else(|| anyhow::anyhow!("no summary"))?;
    let value = |key: &str| -> u64 {
        summary
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
            .unwrap_or(0)
    };
    Ok((value("tests"), value("clusters_created"), wall))
}
