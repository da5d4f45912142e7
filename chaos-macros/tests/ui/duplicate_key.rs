use chaos_runtime::prelude::*;

#[chaos_test(masters = 3, workers = 2, masters = 1)]
async fn t(cluster: &Cluster) -> anyhow::Result<()> {
    let _ = cluster.name();
    Ok(())
}

fn main() {}
