use chaos_runtime::prelude::*;

#[chaos_test]
async fn io_error(cluster: &Cluster) -> std::io::Result<()> {
    let _ = cluster.name();
    Ok(())
}

#[chaos_test]
async fn boxed_error(cluster: &Cluster) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _ = cluster.name();
    Ok(())
}

#[chaos_test]
async fn string_error(cluster: &Cluster) -> Result<(), String> {
    let _ = cluster.name();
    Ok(())
}

/// A test function named like the closure's binding still gets its cluster.
#[chaos_test]
async fn cluster(cluster: &Cluster) -> anyhow::Result<()> {
    let _ = cluster.name();
    Ok(())
}

mod nested {
    use chaos_runtime::prelude::*;

    #[chaos_test(k8s = "1.30")]
    pub async fn in_a_module(cluster: &Cluster) -> anyhow::Result<()> {
        let _ = cluster.name();
        Ok(())
    }
}

fn main() {}
