use chaos_runtime::prelude::*;

#[chaos_test(masters = 2, k8s = "1.29", master_versions = ["1.29", "1.27"], worker_versions = ["1.27"])]
async fn t(cluster: &Cluster) -> anyhow::Result<()> {
    let _ = cluster.name();
    Ok(())
}

fn main() {}
