use chaos_runtime::prelude::*;

#[chaos_test]
#[tokio::test]
async fn t(cluster: &Cluster) {
    let _ = cluster.name();
}

fn main() {}
