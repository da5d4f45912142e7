use chaos_runtime::prelude::*;

#[chaos_test(k8s = ["1.29", "1.30", "v1.29"])]
async fn t(cluster: &Cluster) -> anyhow::Result<()> {
    let _ = cluster.name();
    Ok(())
}

fn main() {}
