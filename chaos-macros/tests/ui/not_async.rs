use chaos_runtime::prelude::*;

#[chaos_test]
fn t(cluster: &Cluster) -> anyhow::Result<()> {
    let _ = cluster.name();
    Ok(())
}

fn main() {}
