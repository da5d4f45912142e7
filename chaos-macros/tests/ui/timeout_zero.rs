use chaos_runtime::prelude::*;

#[chaos_test(timeout = "0s")]
async fn t(cluster: &Cluster) -> anyhow::Result<()> {
    let _ = cluster.name();
    Ok(())
}

fn main() {}
