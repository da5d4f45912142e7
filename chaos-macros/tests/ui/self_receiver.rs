use chaos_runtime::prelude::*;

struct Suite;

impl Suite {
    #[chaos_test]
    async fn t(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

fn main() {}
