//! Seeds: one per run (from `CHAOS_SEED` or random), and one per test derived from it and the
//! test's name, so that rerunning one test with the run's seed gives it the same seed.

/// A test's seed: the run seed mixed with a stable hash of the test's name.
pub(crate) fn test_seed(run_seed: u64, test_name: &str) -> u64 {
    splitmix64(run_seed ^ crate::hash::stable_hash(test_name))
}

/// The seed of a test's `attempt` (1 for the first): the test's seed for the first, so that a run
/// without retries is as before, and for each retry one mixed from it and the attempt's number,
/// so that a retry does not repeat the schedule that just failed.
pub(crate) fn attempt_seed(test_seed: u64, attempt: u32) -> u64 {
    match attempt {
        0 | 1 => test_seed,
        n => splitmix64(test_seed ^ crate::hash::stable_hash(&format!("attempt {n}"))),
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_run_seed_and_name_give_the_same_seed() {
        assert_eq!(test_seed(7, "a::b"), test_seed(7, "a::b"));
        assert_ne!(test_seed(7, "a::b"), test_seed(8, "a::b"));
        assert_ne!(test_seed(7, "a::b"), test_seed(7, "a::c"));
    }

    #[test]
    fn the_first_attempt_keeps_the_test_seed_and_each_retry_has_its_own() {
        let seed = test_seed(7, "a::b");
        assert_eq!(attempt_seed(seed, 1), seed);
        let seeds: std::collections::BTreeSet<u64> = (1..=11)
            .map(|attempt| attempt_seed(seed, attempt))
            .collect();
        assert_eq!(seeds.len(), 11, "{seeds:?}");
        assert_eq!(attempt_seed(seed, 3), attempt_seed(seed, 3));
        assert_ne!(attempt_seed(seed, 2), attempt_seed(seed + 1, 2));
    }

    #[test]
    fn is_stable_across_releases() {
        // Printed seeds must reproduce on any toolchain: one value, computed outside Rust.
        assert_eq!(test_seed(42, "node::kill"), 0x9c21_d655_ff5d_3b31);
    }
}
