//! Six tests over two topologies, for `tests/nextest.rs`, which runs them one process per test
//! (`--exact NAME`) as `cargo nextest run` does. Each says which cluster it got; with
//! `SHARED_TEST_SLEEP_MS` set, each then sleeps that long (a test still running when nextest is
//! killed). Also a test target, for a real `cargo nextest run` on the same fake kind.

mod shared_tests;

// Only when asked: on kind, which the tests that run it fake (`tests/fake_kind/mod.rs`).
chaos_runtime::main!(only_if_env = "CHAOS_SELFTEST_SHARED=kind");
