use chaos_runtime::prelude::*;

#[chaos_test(workers = 3, k8s = "1.29", worker_versions = ["1.28", "1.29"])]
async fn t(cluster: &Cluster) -> anyhow::Result<()> {
    let _ = cluster.name();
    Ok(())
}

fn main() {}
