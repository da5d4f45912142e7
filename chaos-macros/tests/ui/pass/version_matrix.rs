use chaos_runtime::prelude::*;

#[chaos_test(k8s = ["1.29", "1.30", "1.30.4"], workers = 2, worker_versions = ["1.29", "1.28"])]
async fn upgrade_matrix(cluster: &Cluster) -> anyhow::Result<()> {
    let _ = cluster.topology();
    Ok(())
}

fn main() {}
