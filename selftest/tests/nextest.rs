//! Under nextest (one process per test), the test processes of one run share clusters through
//! lease records on disk, and the run leaves none: tested with a stand-in for nextest on a fake
//! kind (`fake_kind/mod.rs`), so that it runs anywhere, Docker or not.

mod fake_kind;

use std::time::Duration;

use fake_kind::{Fake, TESTS, summary, wait_child, wait_until};

#[test]
fn six_tests_over_two_topologies_one_process_each_create_two_clusters_and_leave_none() {
    let fake = Fake::new("share");
    let mut nextest = fake.nextest(&[]);
    wait_child(&mut nextest, Duration::from_secs(180), || fake.report());

    let (mut created, mut reused) = (0, 0);
    for test in TESTS {
        let output = fake.output(test);
        let summary = summary(&output)
            .unwrap_or_else(|| panic!("{test} printed no summary\n{}", fake.report()));
        assert_eq!(
            (summary["passed"].as_str(), summary["failed"].as_str()),
            ("1", "0"),
            "{test}\n{}",
            fake.report()
        );
        created += summary["clusters_created"].parse::<u32>().unwrap();
        reused += summary["clusters_reused"].parse::<u32>().unwrap();
    }
    // One cluster per topology for the whole run, as `cargo test` makes; the other four tests
    // took one another had left idle.
    assert_eq!(fake.calls("create cluster"), 2, "{}", fake.report());
    assert_eq!((created, reused), (2, 4), "{}", fake.report());
    // Said once for the run, by its first process, not by each.
    let banners = TESTS
        .iter()
        .filter(|t| fake.output(t).contains("its test processes share clusters"))
        .count();
    assert_eq!(banners, 1, "{}", fake.report());

    // nextest (the shell) is gone: the reaper removes the idle clusters and the run's records.
    wait_until(
        "the reaper to remove the run's clusters and records",
        Duration::from_secs(60),
        || fake.clusters().is_empty() && !fake.run_dir().exists(),
        || fake.report(),
    );
    // (The reaper's provider may find them gone already: kind's start-up removes the clusters
    // whose owner, nextest, ended, as `cargo chaos gc` does.)
    assert!(fake.calls("delete cluster") >= 2, "{}", fake.report());
    assert_eq!(fake.ownership_records(), Vec::<String>::new());
    assert_eq!(fake.servers(), Vec::<String>::new());
}

#[test]
fn an_idle_cluster_is_removed_after_chaos_idle_timeout_while_nextest_still_runs() {
    let fake = Fake::new("idle");
    let mut nextest = fake.nextest_of(&[TESTS[0]], 60, &[("CHAOS_IDLE_TIMEOUT", "1s")]);
    wait_until(
        "the test's cluster to be made and removed once idle for 1s",
        Duration::from_secs(60),
        || {
            fake.calls("create cluster") == 1
                && fake.clusters().is_empty()
                && fake.ownership_records().is_empty()
        },
        || fake.report(),
    );
    assert!(
        nextest.try_wait().unwrap().is_none(),
        "removed while nextest still runs, for the idle timeout"
    );
    assert!(
        fake.run_dir().exists(),
        "the run's records stay while nextest runs"
    );
    let killed = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", nextest.id())])
        .status()
        .unwrap();
    assert!(killed.success());
    nextest.wait().unwrap();
    wait_until(
        "the reaper to remove the run's records once nextest is gone",
        Duration::from_secs(30),
        || !fake.run_dir().exists(),
        || fake.report(),
    );
}
