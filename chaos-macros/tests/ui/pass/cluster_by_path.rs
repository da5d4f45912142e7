use chaos_runtime::prelude::*;

#[chaos_test(workers = 2)]
async fn full_path(cluster: &chaos_runtime::Cluster) -> anyhow::Result<()> {
    let _ = cluster.seed();
    Ok(())
}

#[chaos_test]
async fn elided_lifetime(cluster: &'_ Cluster) -> anyhow::Result<()> {
    let _ = cluster.seed();
    Ok(())
}

fn main() {}
