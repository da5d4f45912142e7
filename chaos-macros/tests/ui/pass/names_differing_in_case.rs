// Two tests whose names differ only in case are two tests, each under its own name (their
// registrations once collided as one `static __CHAOS_TEST_FOO`).
#![allow(non_snake_case)]
use chaos_runtime::prelude::*;

#[chaos_test]
async fn foo(_: &Cluster) {}

#[chaos_test(workers = 2)]
async fn Foo(_: &Cluster) {}

mod nested {
    use chaos_runtime::prelude::*;

    // The same name in another module, and a raw identifier.
    #[chaos_test]
    async fn foo(_: &Cluster) {}

    #[chaos_test]
    async fn r#type(_: &Cluster) {}
}

fn main() {
    let mut tests: Vec<_> = chaos_runtime::__private::TESTS
        .iter()
        .map(|t| (t.module_path, t.name, t.workers))
        .collect();
    tests.sort();
    let root = module_path!();
    let nested = format!("{root}::nested");
    assert_eq!(
        tests,
        [
            (root, "Foo", 2),
            (root, "foo", 1),
            (nested.as_str(), "foo", 1),
            (nested.as_str(), "type", 1),
        ]
    );
}
