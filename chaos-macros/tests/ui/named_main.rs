use chaos_runtime::prelude::*;

#[chaos_test]
async fn main(cluster: &Cluster) {
    let _ = cluster.name();
}

// Stands for the `main` that `chaos_runtime::main!()` writes in a suite.
mod harness {
    pub fn main() {}
}
pub use harness::main;
