use chaos_runtime::prelude::*;

#[chaos_test]
async fn t(cluster: &mut Cluster) -> anyhow::Result<()> {
    let _ = cluster.name();
    Ok(())
}

fn main() {}
