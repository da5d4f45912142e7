use chaos_runtime::prelude::*;

#[chaos_test(workers = 2)]
#[test]
async fn t(cluster: &Cluster) {
    let _ = cluster.name();
}

fn main() {}
