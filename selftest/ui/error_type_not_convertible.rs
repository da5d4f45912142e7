use chaos_runtime::prelude::*;

struct NotAnError;

#[chaos_test]
async fn t(cluster: &Cluster) -> Result<(), NotAnError> {
    let _ = cluster.name();
    Ok(())
}

fn main() {}
