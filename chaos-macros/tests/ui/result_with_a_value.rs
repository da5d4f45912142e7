use chaos_runtime::prelude::*;

#[chaos_test]
async fn t(cluster: &Cluster) -> anyhow::Result<usize> {
    Ok(cluster.nodes().len())
}

fn main() {}
