use chaos_runtime::prelude::*;

#[chaos_test(timeout = 90)]
async fn t(cluster: &Cluster) -> anyhow::Result<()> {
    let _ = cluster.name();
    Ok(())
}

fn main() {}
