use chaos_runtime::prelude::*;

#[chaos_test(
    masters = 3,
    workers = 3,
    k8s = "v1.29.14",
    master_versions = ["1.29", "1.29.14", "1.28"],
    worker_versions = ["1.28", "1.27", "1.26"],
    timeout = "10m",
    ignore,
    retries = 2,
)]
async fn every_key(cluster: &Cluster) -> anyhow::Result<()> {
    let _ = cluster.client();
    Ok(())
}

fn main() {}
