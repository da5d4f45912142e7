use chaos_runtime::prelude::*;

#[chaos_test]
async fn t(cluster: &Cluster) -> bool {
    !cluster.name().is_empty()
}

fn main() {}
