use chaos_runtime::prelude::*;

#[chaos_test(masters = 3)]
struct ClusterSpec;

fn main() {}
