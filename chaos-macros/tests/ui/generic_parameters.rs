use chaos_runtime::prelude::*;

#[chaos_test]
async fn t<T: Default>(cluster: &Cluster) -> anyhow::Result<()> {
    let _ = (cluster.name(), T::default());
    Ok(())
}

fn main() {}
