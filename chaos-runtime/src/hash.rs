//! One stable hash, for what is derived from text and must come out the same run after run (a
//! test's seed from its name, a reused cluster's name from what it is): FNV-1a 64, which std's
//! `DefaultHasher` does not promise to stay.

use std::hash::Hasher;

/// FNV-1a 64 of `text`.
pub(crate) fn stable_hash(text: &str) -> u64 {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(text.as_bytes());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_fnv1a_64() {
        // The FNV test vectors: the offset basis for "", and "a".
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
