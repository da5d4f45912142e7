use chaos_runtime::prelude::*;

#[chaos_test(masters = 3, k8s = "1.30", master_versions = ["1.29"])]
async fn t(cluster: &Cluster) -> anyhow::Result<()> {
    let _ = cluster.name();
    Ok(())
}

fn main() {}
