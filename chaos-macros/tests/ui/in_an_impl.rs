use chaos_runtime::prelude::*;

struct Suite;

impl Suite {
    #[chaos_test]
    async fn t(cluster: &Cluster) -> anyhow::Result<()> {
        let _ = cluster.name();
        Ok(())
    }
}

fn main() {}
