use chaos_runtime::prelude::*;

#[chaos_test(workers = 3)]
#[chaos_test]
async fn t(cluster: &Cluster) {
    let _ = cluster.name();
}

fn main() {}
