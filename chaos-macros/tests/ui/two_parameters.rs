use chaos_runtime::prelude::*;

#[chaos_test]
async fn t(cluster: &Cluster, seed: u64) -> anyhow::Result<()> {
    let _ = (cluster.name(), seed);
    Ok(())
}

fn main() {}
