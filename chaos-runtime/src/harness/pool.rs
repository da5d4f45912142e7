//! The clusters alive in this run, and the counters of the summary line. Whatever path a run
//! takes (normal end, panicking harness task, Ctrl-C), teardown goes through here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::cluster::SharedCluster;
use crate::harness::progress::say;
use crate::provider::Provider;

#[derive(Default)]
pub(crate) struct Counters {
    pub created: AtomicU64,
    pub recreated: AtomicU64,
    pub reused: AtomicU64,
    pub destroyed: AtomicU64,
}

pub(crate) struct Pool {
    pub provider: Box<dyn Provider>,
    pub counters: Counters,
    live: Mutex<Vec<Arc<SharedCluster>>>,
    /// Clusters being created: not live yet, but something of them may exist.
    creating: Mutex<Vec<String>>,
    /// Live clusters whose teardown has begun.
    removing: Mutex<std::collections::HashSet<String>>,
    /// Teardowns that failed, each with what to run by hand.
    teardown_errors: Mutex<Vec<String>>,
}

impl Pool {
    pub fn new(provider: Box<dyn Provider>) -> Self {
        Pool {
            provider,
            counters: Counters::default(),
            live: Mutex::default(),
            creating: Mutex::default(),
            removing: Mutex::default(),
            teardown_errors: Mutex::default(),
        }
    }

    pub fn add(&self, cluster: Arc<SharedCluster>) {
        let counter = match cluster.provisioned.reused {
            true => &self.counters.reused,
            false => &self.counters.created,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(cluster);
    }

    /// `name` is being created, until [`Pool::created`].
    pub fn creating(&self, name: &str) {
        self.creating
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(name.to_owned());
    }

    /// The creation of `name` ended, made or not.
    pub fn created(&self, name: &str) {
        self.creating
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|n| n != name);
    }

    /// The clusters being created now.
    pub fn being_created(&self) -> Vec<String> {
        self.creating
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The names of every cluster of this run that exists or may exist now: live or being made.
    pub fn left_behind(&self) -> Vec<String> {
        let mut names: Vec<String> = self.live().iter().map(|c| c.name.clone()).collect();
        names.extend(
            self.creating
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        names
    }

    /// Removes what the stopped creation of `name` made; a failure is kept for the end of the run.
    pub async fn discard(&self, name: &str) {
        match self.provider.discard(name).await {
            Ok(()) => say(format!("removed the unfinished cluster {name}")),
            Err(err) => {
                let line = format!("could not remove the unfinished cluster {name}: {err:#}");
                say(&line);
                self.teardown_errors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(line);
            }
        }
        self.created(name);
    }

    /// Stops tracking `name` without removing it: another process of the nextest run may take
    /// it now (`harness::lease_records`), and this run's teardown must leave it be.
    pub fn forget(&self, name: &str) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|c| c.name != name);
    }

    pub fn live(&self) -> Vec<Arc<SharedCluster>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Tears a cluster down and forgets it; a failure is kept for the end of the run. Until
    /// it is gone it stays listed, so that a second Ctrl-C can say it is left.
    pub async fn destroy(&self, cluster: &SharedCluster) {
        let first = {
            let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            let mut removing = self.removing.lock().unwrap_or_else(|e| e.into_inner());
            live.iter().any(|c| c.name == cluster.name) && removing.insert(cluster.name.clone())
        };
        if !first {
            return; // Another path (a signal, the final sweep) got there first.
        }
        let destroyed = self.provider.destroy(&cluster.provisioned).await;
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|c| c.name != cluster.name);
        match destroyed {
            Ok(()) => {
                self.counters.destroyed.fetch_add(1, Ordering::SeqCst);
                say(format!("removed cluster {}", cluster.name));
            }
            Err(err) => {
                let line = format!("could not remove cluster {}: {err:#}", cluster.name);
                say(&line);
                self.teardown_errors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(line);
            }
        }
    }

    /// Tears down every cluster still alive.
    pub async fn destroy_all(&self) {
        for cluster in self.live() {
            self.destroy(&cluster).await;
        }
    }

    pub fn teardown_errors(&self) -> Vec<String> {
        self.teardown_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn get(&self, counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }
}
