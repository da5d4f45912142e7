use chaos_runtime::prelude::*;

#[chaos_test]
async unsafe fn t(cluster: &Cluster) -> anyhow::Result<()> {
    let _ = cluster.name();
    Ok(())
}

fn main() {}
