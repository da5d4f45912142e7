use chaos_runtime::prelude::*;

#[chaos_test]
async fn t(cluster: &Cluster) -> anyhow::Result<()> {
    let shared = std::rc::Rc::new(cluster.name().to_owned());
    std::future::ready(()).await;
    let _ = shared;
    Ok(())
}

fn main() {}
