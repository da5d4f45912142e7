use chaos_runtime::prelude::*;

#[chaos_test]
async fn t(name: &str) -> anyhow::Result<()> {
    let _ = name;
    Ok(())
}

fn main() {}
