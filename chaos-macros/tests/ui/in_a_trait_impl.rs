use chaos_runtime::prelude::*;

trait Scenario {
    async fn run(cluster: &Cluster);
}

struct Suite;

impl Scenario for Suite {
    #[chaos_test]
    async fn run(cluster: &Cluster) {
        let _ = cluster.name();
    }
}

fn main() {}
