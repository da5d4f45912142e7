use chaos_runtime::prelude::*;

#[chaos_test(k8s = "1.32", workers = 2, worker_versions = ["1.31", "1.28"])]
async fn t(cluster: &Cluster) -> anyhow::Result<()> {
    let _ = cluster.name();
    Ok(())
}

fn main() {}
