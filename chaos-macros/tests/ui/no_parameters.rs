use chaos_runtime::prelude::*;

#[chaos_test]
async fn t() -> anyhow::Result<()> {
    Ok(())
}

fn main() {}
