//! Sharding a suite across CI machines: `CHAOS_PARTITION=hash:K/N` or `count:K/N`.
//!
//! The syntax is nextest's `--partition` (<https://nexte.st/docs/ci-features/partitioning/>:
//! "`count:m/n` ... where m and n are both integers, and 1 ≤ m ≤ n", the same for `hash:m/n`),
//! so that a CI matrix written for nextest reads the same here. What is assigned differs: nextest
//! assigns tests, the harness assigns whole topologies (all the tests that share one cluster), so
//! that no shard creates a cluster for a topology whose tests another shard runs.
//!
//! **What the assignment is computed over.** Every test of the binary: all its registrations and
//! matrix entries, `ignore`d ones included, before any name filter, `--skip`, `--ignored` or
//! `main!` gate. Every machine of a CI matrix runs the same binary, so each computes the same split
//! whatever else its command line says; a filter then only narrows what runs within a shard.
//! (nextest's `count:` counts after its filters instead: a different filter on two machines would
//! give them different splits.)
//!
//! **Tests of other shards** are filtered out, as libtest filters out tests a name filter does not
//! match: they are neither run nor reported, and libtest's `N filtered out` counts them. Reported
//! as ignored instead, each test would be in every shard's report, skipped in all but one: a merged
//! JUnit report or test count would hold it N times. Filtered out, the shards' reports together
//! hold every test once.
//!
//! - `hash:K/N`: a topology is in shard `stable_hash(label) mod N + 1` (FNV-1a of its label,
//!   [`crate::hash::stable_hash`]): the same on every machine and in every run, and independent of
//!   the other tests (adding a test moves no other topology), but not balanced.
//! - `count:K/N`: topologies are balanced by [`modelled_cost`]: largest cost first (ties by label),
//!   each into the shard with the least cost so far (ties: the lowest shard). Deterministic for
//!   one set of tests; adding a test may move others.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::plan::TestCase;

/// Modelled seconds to create one node of a cluster: kind starts a container per node and joins
/// them one after the other. A model, not a measurement: only the ratio to [`PER_TEST`] matters.
pub const CREATE_PER_NODE: u64 = 20;

/// Modelled seconds one test holds its cluster: its body, then the heal and health check.
pub const PER_TEST: u64 = 30;

/// The modelled cost of a topology's share of a run, in modelled seconds: creating its cluster
/// ([`CREATE_PER_NODE`] per node) and running its tests on it ([`PER_TEST`] per test). The one
/// cost model `count:` balances and `cargo chaos plan --shards` prints.
pub fn modelled_cost(nodes: usize, tests: usize) -> u64 {
    CREATE_PER_NODE * nodes as u64 + PER_TEST * tests as u64
}

/// How topologies are assigned to shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// By a stable hash of the topology's label.
    Hash,
    /// Balanced by modelled cost over all the binary's topologies.
    Count,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Hash => "hash",
            Mode::Count => "count",
        }
    }
}

/// `CHAOS_PARTITION`: run shard `shard` (from 1) of `total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    /// How topologies are assigned.
    pub mode: Mode,
    /// This shard, from 1 to `total`.
    pub shard: u64,
    /// How many shards.
    pub total: u64,
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.mode.name(), self.shard, self.total)
    }
}

/// A `CHAOS_PARTITION` value that is not `hash:K/N` or `count:K/N` with 1 <= K <= N.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    /// Neither `hash:` nor `count:`.
    #[error(
        "`{0}` does not start with hash: or count:; write hash:K/N or count:K/N (shard K of N, \
         counted from 1), e.g. count:1/2"
    )]
    Mode(String),
    /// Not `K/N` after the mode.
    #[error("`{0}` is not K/N with two whole numbers; write it like {1}:1/2")]
    Shards(String, &'static str),
    /// `K` is 0.
    #[error("there is no shard 0: shards are counted from 1 to N; write {0}:1/{1} for the first")]
    ZeroShard(&'static str, u64),
    /// `N` is 0.
    #[error("there are no shards in {0}:K/0; N counts the shards, at least 1, as in {0}:1/2")]
    ZeroTotal(&'static str),
    /// `K` is more than `N`.
    #[error(
        "shard {shard} of {total} does not exist; K goes from 1 to N, as in {mode}:{total}/{total}"
    )]
    PastTotal {
        /// `hash` or `count`.
        mode: &'static str,
        /// K.
        shard: u64,
        /// N.
        total: u64,
    },
}

impl FromStr for Partition {
    type Err = PartitionError;

    fn from_str(text: &str) -> Result<Partition, PartitionError> {
        let text = text.trim();
        let (mode, rest) = if let Some(rest) = text.strip_prefix("hash:") {
            (Mode::Hash, rest)
        } else if let Some(rest) = text.strip_prefix("count:") {
            (Mode::Count, rest)
        } else {
            return Err(PartitionError::Mode(text.to_owned()));
        };
        let number = |s: &str| s.trim().parse::<u64>().ok();
        let (shard, total) = rest
            .split_once('/')
            .and_then(|(k, n)| Some((number(k)?, number(n)?)))
            .ok_or_else(|| PartitionError::Shards(rest.to_owned(), mode.name()))?;
        if total == 0 {
            return Err(PartitionError::ZeroTotal(mode.name()));
        }
        if shard == 0 {
            return Err(PartitionError::ZeroShard(mode.name(), total));
        }
        if shard > total {
            return Err(PartitionError::PastTotal {
                mode: mode.name(),
                shard,
                total,
            });
        }
        Ok(Partition { mode, shard, total })
    }
}

/// One topology of a suite as sharding sees it: what `cargo chaos plan --shards` reads from a
/// suite binary (`CHAOS_LIST_TOPOLOGIES=1 <suite> --list`, one JSON object per line) and what the
/// harness assigns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardGroup {
    /// The topology's label, as in test names: `1m3w-k8s1.29`.
    pub label: String,
    /// Nodes of its cluster.
    pub nodes: usize,
    /// Its tests, by name, in name order.
    pub tests: Vec<String>,
}

impl ShardGroup {
    /// [`modelled_cost`] of this topology.
    pub fn cost(&self) -> u64 {
        modelled_cost(self.nodes, self.tests.len())
    }
}

/// The shard (from 1 to `total`) of each group, in the order given.
pub fn assign(mode: Mode, total: u64, groups: &[ShardGroup]) -> Vec<u64> {
    let total = total.max(1);
    match mode {
        Mode::Hash => groups
            .iter()
            .map(|g| crate::hash::stable_hash(&g.label) % total + 1)
            .collect(),
        Mode::Count => {
            let mut order: Vec<usize> = (0..groups.len()).collect();
            order.sort_by(|&a, &b| {
                let (a, b) = (&groups[a], &groups[b]);
                b.cost().cmp(&a.cost()).then_with(|| a.label.cmp(&b.label))
            });
            // Every cost is positive, so a group goes to an empty shard while there is one, the
            // lowest first: no more shards than groups are ever filled, whatever `total` is.
            let shards = (total as usize).min(groups.len()).max(1);
            let mut load = vec![0u64; shards];
            let mut assigned = vec![0u64; groups.len()];
            for i in order {
                let (cheapest, _) = load
                    .iter()
                    .enumerate()
                    .min_by_key(|(index, cost)| (**cost, *index))
                    .expect("at least one shard");
                load[cheapest] += groups[i].cost();
                assigned[i] = cheapest as u64 + 1;
            }
            assigned
        }
    }
}

/// Every test of the binary grouped by topology label, in label order. (Two topologies with one
/// label, if there were such, would be one group: never split across shards.)
pub(crate) fn groups_of(cases: &[TestCase]) -> Vec<ShardGroup> {
    let mut by_label: BTreeMap<String, ShardGroup> = BTreeMap::new();
    for case in cases {
        let label = case.topology.label();
        by_label
            .entry(label.clone())
            .or_insert_with(|| ShardGroup {
                label,
                nodes: case.topology.nodes().len(),
                tests: Vec::new(),
            })
            .tests
            .push(case.name.clone());
    }
    by_label.into_values().collect()
}

/// Filters out the tests of other shards, as `--skip` would: libtest-mimic then neither runs nor
/// lists them and counts them as filtered out, and the harness provisions nothing for them.
/// Returns the line that says what this shard runs.
pub(crate) fn keep_only_this_shard(
    partition: Partition,
    cases: &[TestCase],
    args: &mut libtest_mimic::Arguments,
) -> String {
    let groups = groups_of(cases);
    let shards = assign(partition.mode, partition.total, &groups);
    let (mut topologies, mut tests) = (0, 0);
    for (group, shard) in groups.iter().zip(shards) {
        if shard == partition.shard {
            topologies += 1;
            tests += group.tests.len();
            continue;
        }
        // libtest-mimic matches a skip against the full name `[label] name` (with `--exact`, the
        // whole of it; otherwise a substring of it). Labels hold no `]` and names no space, so
        // `[label] name` is a substring of no other test's full name but those that share its
        // label, which are in the same shard.
        args.skip
            .extend(group.tests.iter().map(|t| format!("[{}] {t}", group.label)));
    }
    format!(
        "CHAOS_PARTITION={partition}: this shard runs {topologies} of {} topologies ({tests} of \
         {} tests); the tests of the other shards are filtered out",
        groups.len(),
        cases.len()
    )
}

/// Prints each topology of the binary as one JSON line ([`ShardGroup`]), for `cargo chaos plan
/// --shards`.
pub(crate) fn print_topologies(cases: &[TestCase]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for group in groups_of(cases) {
        writeln!(out, "{}", serde_json::to_string(&group)?)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(label: &str, nodes: usize, tests: usize) -> ShardGroup {
        ShardGroup {
            label: label.to_owned(),
            nodes,
            tests: (0..tests).map(|i| format!("t{i}")).collect(),
        }
    }

    fn loads(shards: &[u64], groups: &[ShardGroup], total: u64) -> Vec<u64> {
        let mut loads = vec![0; total as usize];
        for (shard, group) in shards.iter().zip(groups) {
            loads[*shard as usize - 1] += group.cost();
        }
        loads
    }

    #[test]
    fn parses_nextests_forms() {
        assert_eq!(
            "hash:1/2".parse(),
            Ok(Partition {
                mode: Mode::Hash,
                shard: 1,
                total: 2
            })
        );
        assert_eq!(
            " count:3/3 ".parse(),
            Ok(Partition {
                mode: Mode::Count,
                shard: 3,
                total: 3
            })
        );
        assert_eq!(
            "count:2/5".parse::<Partition>().unwrap().to_string(),
            "count:2/5"
        );
    }

    #[test]
    fn refuses_what_is_not_a_shard_with_the_fix() {
        let err = |text: &str| text.parse::<Partition>().unwrap_err().to_string();
        assert_eq!(
            err("hash:0/2"),
            "there is no shard 0: shards are counted from 1 to N; write hash:1/2 for the first"
        );
        assert_eq!(
            err("count:3/2"),
            "shard 3 of 2 does not exist; K goes from 1 to N, as in count:2/2"
        );
        assert_eq!(
            err("hash:1/0"),
            "there are no shards in hash:K/0; N counts the shards, at least 1, as in hash:1/2"
        );
        for bad in ["3/2", "foo", "slice:1/2", ""] {
            assert!(
                err(bad).contains("does not start with hash: or count:"),
                "{bad}: {}",
                err(bad)
            );
        }
        for bad in ["hash:1", "hash:a/2", "count:1/2/3", "hash:-1/2", "hash:"] {
            assert!(err(bad).contains("is not K/N"), "{bad}: {}", err(bad));
        }
    }

    #[test]
    fn the_cost_model_is_nodes_and_tests() {
        assert_eq!(modelled_cost(2, 1), 2 * CREATE_PER_NODE + PER_TEST);
        assert_eq!(group("a", 6, 3).cost(), 6 * CREATE_PER_NODE + 3 * PER_TEST);
    }

    #[test]
    fn count_puts_the_largest_first_into_the_cheapest_shard() {
        // Costs 160, 120, 110, 70, 70.
        let groups = [
            group("1m1w-k8s1.30", 2, 1),
            group("1m1w-k8s1.31", 2, 4),
            group("1m1w-k8s1.35", 2, 1),
            group("1m2w-k8s1.30", 3, 2),
            group("1m3w-k8s1.31", 4, 1),
        ];
        let shards = assign(Mode::Count, 2, &groups);
        // 160 -> 1; 120 -> 2; 110 -> 2 (120 < 160); 70 (label 1.30) -> 1 (160 < 230);
        // 70 (1.35) -> 1 (230 = 230, the lower shard).
        assert_eq!(shards, vec![1, 1, 1, 2, 2]);
        assert_eq!(loads(&shards, &groups, 2), vec![300, 230]);
    }

    #[test]
    fn count_balances_better_than_one_shard_per_group_in_order() {
        let groups: Vec<ShardGroup> = (0..9)
            .map(|i| group(&format!("g{i}"), 2 + i % 4, 1 + i % 3))
            .collect();
        let shards = assign(Mode::Count, 3, &groups);
        let loads = loads(&shards, &groups, 3);
        let (min, max) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
        // Greedy largest-first is within the largest single cost of the best split.
        let largest = groups.iter().map(ShardGroup::cost).max().unwrap();
        assert!(max - min <= largest, "{loads:?}");
        assert!(loads.iter().all(|l| *l > 0), "{loads:?}");
    }

    #[test]
    fn count_is_the_same_whatever_order_the_groups_come_in() {
        let groups = vec![
            group("b", 2, 2),
            group("a", 2, 2),
            group("c", 3, 1),
            group("d", 5, 5),
        ];
        let forward = assign(Mode::Count, 2, &groups);
        let mut reversed = groups.clone();
        reversed.reverse();
        let mut backward = assign(Mode::Count, 2, &reversed);
        backward.reverse();
        assert_eq!(forward, backward);
        // Equal costs: the lower label goes first, into the lower shard.
        assert_eq!(
            assign(Mode::Count, 2, &[group("b", 2, 2), group("a", 2, 2)]),
            vec![2, 1]
        );
    }

    #[test]
    fn more_shards_than_topologies_leaves_shards_empty_and_allocates_nothing_for_them() {
        let groups = [group("a", 2, 1), group("b", 6, 3)];
        assert_eq!(assign(Mode::Count, u64::MAX, &groups), vec![2, 1]);
        assert_eq!(assign(Mode::Count, 3, &[]), Vec::<u64>::new());
        let hashed = assign(Mode::Hash, u64::MAX, &groups);
        assert!(hashed.iter().all(|s| *s >= 1));
    }

    #[test]
    fn hash_depends_on_the_label_only() {
        let alone = assign(Mode::Hash, 3, &[group("1m1w-k8s1.31", 2, 1)]);
        let among = assign(
            Mode::Hash,
            3,
            &[
                group("3m3w-k8s1.29", 6, 9),
                group("1m1w-k8s1.31", 9, 9),
                group("x", 2, 1),
            ],
        );
        assert_eq!(alone[0], among[1]);
        // FNV-1a 64 of the label, mod N, plus 1.
        assert_eq!(alone[0], crate::hash::stable_hash("1m1w-k8s1.31") % 3 + 1);
        for total in 1..6 {
            for shard in assign(Mode::Hash, total, &[group("a", 2, 1), group("b", 2, 1)]) {
                assert!((1..=total).contains(&shard));
            }
        }
    }
}
