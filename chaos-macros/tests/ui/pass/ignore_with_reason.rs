use chaos_runtime::prelude::*;

#[chaos_test(ignore = "needs 6 nodes; run with --ignored", timeout = "90s")]
async fn slow_drain(cluster: &Cluster) -> anyhow::Result<()> {
    let _ = cluster.namespace();
    Ok(())
}

fn main() {}
