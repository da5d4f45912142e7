use chaos_runtime::prelude::*;

#[chaos_test]
async fn returns_nothing(cluster: &Cluster) {
    let _ = cluster.name();
}

#[chaos_test(masters = 1, workers = 0)]
async fn returns_unit(_: &Cluster) -> () {}

fn main() {}
