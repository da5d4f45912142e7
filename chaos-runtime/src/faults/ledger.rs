//! The one ledger of a cluster's faults, whichever provider applied them and whichever test made
//! them: each record holds what undoes it, so that a test can undo one fault and the heal can undo
//! whatever is left.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::NodeFault;
use super::node_faults::Undo;

/// What a record stands for, for the operations that end faults without their handle.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Recorded {
    /// A node fault, through the provider.
    Node(NodeFault),
    /// A cordon, through the API.
    Cordon,
}

struct Record {
    id: u64,
    /// For the timeline: `stop chaos-…-worker2`.
    what: String,
    recorded: Recorded,
    /// Every node the fault touches.
    nodes: Vec<String>,
    undo: Box<dyn Undo>,
}

/// The faults in effect on one cluster, oldest first.
#[derive(Default)]
pub(crate) struct Ledger {
    next: AtomicU64,
    records: Mutex<Vec<Record>>,
}

impl Ledger {
    /// Records a fault in effect; returns its id.
    pub fn push(
        &self,
        what: &str,
        recorded: Recorded,
        nodes: Vec<String>,
        undo: Box<dyn Undo>,
    ) -> u64 {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        self.lock().push(Record {
            id,
            what: what.to_owned(),
            recorded,
            nodes,
            undo,
        });
        id
    }

    /// Undoes the fault `id`. `Ok(None)`: it was no longer in effect (undone, or ended by a
    /// start). If the undo fails, the fault stays recorded, so that the heal tries again.
    pub async fn undo(&self, id: u64) -> Result<Option<String>, (String, anyhow::Error)> {
        let Some(record) = self.take(id) else {
            return Ok(None);
        };
        match record.undo.undo().await {
            Ok(()) => Ok(Some(record.what)),
            Err(err) => {
                let what = record.what.clone();
                self.put_back(record);
                Err((what, err))
            }
        }
    }

    /// Forgets, without undoing, the faults on exactly `node` that `ended` says are over (a start
    /// ended them). Returns what they were.
    pub fn forget(&self, node: &str, ended: impl Fn(&Recorded) -> bool) -> Vec<String> {
        let mut records = self.lock();
        let (gone, kept): (Vec<Record>, Vec<Record>) = records
            .drain(..)
            .partition(|r| r.nodes == [node] && ended(&r.recorded));
        *records = kept;
        gone.into_iter().map(|r| r.what).collect()
    }

    /// Undoes every fault still in effect, newest first; goes on past failures and reports them.
    pub async fn heal(&self) -> Result<Vec<String>, String> {
        let records: Vec<Record> = std::mem::take(&mut *self.lock());
        let mut undone = Vec::new();
        let mut failures = Vec::new();
        for record in records.into_iter().rev() {
            match record.undo.undo().await {
                Ok(()) => undone.push(record.what),
                Err(err) => failures.push(format!("{}: {err:#}", record.what)),
            }
        }
        match failures.is_empty() {
            true => Ok(undone),
            false => Err(failures.join("; ")),
        }
    }

    fn take(&self, id: u64) -> Option<Record> {
        let mut records = self.lock();
        let index = records.iter().position(|r| r.id == id)?;
        Some(records.remove(index))
    }

    /// Back in id order, where it was.
    fn put_back(&self, record: Record) {
        let mut records = self.lock();
        let index = records.partition_point(|r| r.id < record.id);
        records.insert(index, record);
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Record>> {
        // A panic elsewhere must not stop the heal that cleans up after it.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use std::sync::Arc;

    /// Counts its undos; fails while `fail` is set.
    struct Counting {
        undone: Arc<AtomicU64>,
        fail: bool,
    }

    impl Undo for Counting {
        fn undo(&self) -> BoxFuture<'_, anyhow::Result<()>> {
            Box::pin(async move {
                anyhow::ensure!(!self.fail, "refused");
                self.undone.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        }
    }

    fn counting(undone: &Arc<AtomicU64>, fail: bool) -> Box<dyn Undo> {
        Box::new(Counting {
            undone: undone.clone(),
            fail,
        })
    }

    fn nodes(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[tokio::test]
    async fn an_undo_runs_once_and_a_failed_one_stays_for_the_heal() {
        let ledger = Ledger::default();
        let undone = Arc::new(AtomicU64::new(0));
        let stop = ledger.push(
            "stop w1",
            Recorded::Node(NodeFault::Stop),
            nodes(&["w1"]),
            counting(&undone, false),
        );
        let refused = ledger.push(
            "pause w2",
            Recorded::Node(NodeFault::Pause),
            nodes(&["w2"]),
            counting(&undone, true),
        );
        assert_eq!(ledger.undo(stop).await.unwrap().as_deref(), Some("stop w1"));
        assert_eq!(ledger.undo(stop).await.unwrap(), None, "already undone");
        assert_eq!(undone.load(Ordering::SeqCst), 1);
        let (what, err) = ledger.undo(refused).await.unwrap_err();
        assert_eq!(
            (what.as_str(), err.to_string()),
            ("pause w2", "refused".into())
        );
        let healed = ledger.heal().await.unwrap_err();
        assert_eq!(healed, "pause w2: refused", "the heal tried it again");
    }

    #[tokio::test]
    async fn the_heal_undoes_newest_first_and_forget_drops_only_what_it_names() {
        let ledger = Ledger::default();
        let undone = Arc::new(AtomicU64::new(0));
        for (what, fault, on) in [
            ("stop w1", NodeFault::Stop, "w1"),
            ("pause w1", NodeFault::Pause, "w1"),
            ("stop w2", NodeFault::Stop, "w2"),
        ] {
            ledger.push(
                what,
                Recorded::Node(fault),
                nodes(&[on]),
                counting(&undone, false),
            );
        }
        ledger.push(
            "partition [w1] | [w2]",
            Recorded::Node(NodeFault::Partition {
                a: nodes(&["w1"]),
                b: nodes(&["w2"]),
            }),
            nodes(&["w1", "w2"]),
            counting(&undone, false),
        );
        let forgotten = ledger.forget("w1", |r| r == &Recorded::Node(NodeFault::Stop));
        assert_eq!(forgotten, ["stop w1"]);
        let healed = ledger.heal().await.unwrap();
        assert_eq!(healed, ["partition [w1] | [w2]", "stop w2", "pause w1"]);
        assert_eq!(undone.load(Ordering::SeqCst), 3);
    }
}
