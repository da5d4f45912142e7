//! Which clusters this project made, and whether the process that made each is still running, so
//! that a later run or `cargo chaos gc` can remove what a killed run left, and only that.
//!
//! A record is written before a cluster is created (so a run killed mid-creation is covered too)
//! and removed after the cluster is deleted. Owners are identified by pid *and* the process's
//! start time, so a recycled pid does not keep a dead run's clusters alive.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// One cluster and who made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRecord {
    /// The kind cluster's name.
    pub cluster: String,
    /// `kind`: the provider that can delete it.
    pub provider: String,
    /// The process that made it.
    pub pid: u32,
    /// The owner's start time in clock ticks since boot (`/proc/<pid>/stat`, field 22).
    pub pid_start: u64,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// Where its kubeconfig was written.
    pub kubeconfig: Option<PathBuf>,
    /// Kept on purpose (`CHAOS_KEEP=1`): not a leftover, whatever happened to its owner.
    #[serde(default)]
    pub kept: bool,
}

/// Whether a cluster's owner still runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerState {
    /// The process that made it is still running.
    Running,
    /// It ended: the cluster is left over.
    Gone,
}

impl OwnerRecord {
    /// A record owned by this process.
    pub fn for_this_process(cluster: &str, provider: &str, kubeconfig: Option<PathBuf>) -> Self {
        let pid = std::process::id();
        OwnerRecord {
            cluster: cluster.to_owned(),
            provider: provider.to_owned(),
            pid,
            pid_start: process_start(pid).unwrap_or(0),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            kubeconfig,
            kept: false,
        }
    }

    /// A cluster whose owner is gone and that nobody asked to keep.
    pub fn is_leftover(&self) -> bool {
        !self.kept && self.owner_state() == OwnerState::Gone
    }

    /// Whether the process that made it still runs: the same pid, started at the same time (a
    /// reused pid is another process).
    pub fn owner_state(&self) -> OwnerState {
        match process_start(self.pid) {
            Some(start) if start == self.pid_start => OwnerState::Running,
            _ => OwnerState::Gone,
        }
    }
}

/// The records kept in a directory: `<dir>/clusters/<cluster>.json`.
#[derive(Clone, Debug)]
pub struct Records {
    dir: PathBuf,
}

impl Records {
    /// `$CHAOS_STATE_DIR`, else `$XDG_STATE_HOME/chaos`, else `~/.local/state/chaos`: one place per
    /// user, so `cargo chaos gc` finds every project's leftovers.
    pub fn default_location() -> Self {
        Records::at(crate::dirs::state_dir())
    }

    /// The records under `dir` (`<dir>/clusters/`).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Records {
            dir: dir.into().join("clusters"),
        }
    }

    /// Where the record files are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, cluster: &str) -> PathBuf {
        self.dir.join(format!("{cluster}.json"))
    }

    /// Writes (or replaces) the record of `record.cluster`, atomically.
    pub fn write(&self, record: &OwnerRecord) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let path = self.path(&record.cluster);
        let temp = path.with_extension("json.tmp");
        std::fs::write(&temp, serde_json::to_vec_pretty(record)?)
            .with_context(|| format!("writing {}", temp.display()))?;
        std::fs::rename(&temp, &path).with_context(|| format!("writing {}", path.display()))
    }

    /// Forgets `cluster`; a record already gone is fine.
    pub fn remove(&self, cluster: &str) -> anyhow::Result<()> {
        match std::fs::remove_file(self.path(cluster)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(err).with_context(|| format!("removing the record of {cluster}"))
            }
            _ => Ok(()),
        }
    }

    /// Every record, by cluster name; unreadable files are skipped.
    pub fn all(&self) -> Vec<OwnerRecord> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut records: Vec<OwnerRecord> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect();
        records.sort_by(|a, b| a.cluster.cmp(&b.cluster));
        records
    }
}

/// A process's start time in clock ticks since boot, or `None` when no such process runs.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_running_and_a_dead_one_is_gone() {
        let mine = OwnerRecord::for_this_process("c1", "kind", None);
        assert_ne!(mine.pid_start, 0);
        assert_eq!(mine.owner_state(), OwnerState::Running);
        let recycled = OwnerRecord {
            pid_start: mine.pid_start + 1,
            ..mine.clone()
        };
        assert_eq!(
            recycled.owner_state(),
            OwnerState::Gone,
            "a pid reused by another process"
        );
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = OwnerRecord { pid, ..mine };
        assert_eq!(dead.owner_state(), OwnerState::Gone);
    }

    #[test]
    fn records_round_trip_and_are_removed() {
        let dir = std::env::temp_dir().join(format!("chaos-records-{}", std::process::id()));
        let records = Records::at(&dir);
        let a = OwnerRecord::for_this_process("chaos-a", "kind", Some("/tmp/a.yaml".into()));
        let b = OwnerRecord::for_this_process("chaos-b", "kind", None);
        records.write(&b).unwrap();
        records.write(&a).unwrap();
        assert_eq!(records.all(), [a.clone(), b.clone()]);
        records.remove("chaos-a").unwrap();
        records.remove("chaos-a").unwrap();
        assert_eq!(records.all(), [b]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
