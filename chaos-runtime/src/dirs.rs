//! Where the project keeps things on disk: per build (timelines, kubeconfigs, logs), per user
//! (cluster ownership records), and what its scripts install (the cache).

use std::path::{Path, PathBuf};

/// `<target>/chaos`: cargo's target directory of the running binary (the ancestor with cargo's
/// `CACHEDIR.TAG`), else the system's temporary directory.
pub(crate) fn chaos_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let target = exe
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    target.join("chaos")
}

/// `$CHAOS_STATE_DIR`, else `$XDG_STATE_HOME/chaos`, else `~/.local/state/chaos`: one place per
/// user, so that `cargo chaos gc` finds every project's leftover clusters.
pub(crate) fn state_dir() -> PathBuf {
    env("CHAOS_STATE_DIR")
        .or_else(|| env("XDG_STATE_HOME").map(|d| d.join("chaos")))
        .or_else(|| env("HOME").map(|d| d.join(".local/state/chaos")))
        .unwrap_or_else(|| std::env::temp_dir().join("chaos"))
}

/// `$CHAOS_CACHE`, else `$XDG_CACHE_HOME/chaos`, else `~/.cache/chaos`: where the project's
/// scripts keep what they install (`scripts/install-kind.sh` computes the same).
pub(crate) fn cache_dir() -> PathBuf {
    env("CHAOS_CACHE")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("chaos")))
        .or_else(|| env("HOME").map(|d| d.join(".cache/chaos")))
        .unwrap_or_else(|| std::env::temp_dir().join("chaos-cache"))
}

/// A variable naming a directory; unset and empty are the same.
fn env(key: &str) -> Option<PathBuf> {
    std::env::var_os(key)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}
