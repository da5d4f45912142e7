//! A suite gated on an environment variable, run as a child process by `tests/harness.rs`.

use chaos_runtime::prelude::*;

#[chaos_test(masters = 1, workers = 1)]
async fn runs_only_when_the_gate_is_open(cluster: &Cluster) -> anyhow::Result<()> {
    anyhow::ensure!(cluster.nodes().len() == 2);
    Ok(())
}

chaos_runtime::main!(only_if_env = "CHAOS_SELFTEST_GATE=sim");
