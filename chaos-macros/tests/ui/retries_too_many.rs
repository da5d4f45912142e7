use chaos_runtime::prelude::*;

#[chaos_test(retries = 11)]
async fn t(cluster: &Cluster) -> anyhow::Result<()> {
    let _ = cluster.name();
    Ok(())
}

fn main() {}
