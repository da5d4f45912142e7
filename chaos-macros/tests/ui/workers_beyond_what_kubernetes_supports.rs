use chaos_runtime::prelude::*;

// Once rustc ran out of memory on this (128 GB for a node list four billion long).
#[chaos_test(workers = 4000000000)]
async fn t(cluster: &Cluster) {
    let _ = cluster.name();
}

fn main() {}
