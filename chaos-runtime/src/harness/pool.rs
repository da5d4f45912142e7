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
    /// Teardowns that failed, each with what to run by hand.
    teardown_errors: Mutex<Vec<String>>,
}

impl Pool {
    pub fn new(provider: Box<dyn Provider>) -> Self {
        Pool {
            provider,
            counters: Counters::default(),
            live: Mutex::default(),
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

    pub fn live(&self) -> Vec<Arc<SharedCluster>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Tears a cluster down and forgets it; a failure is kept for the end of the run.
    pub async fn destroy(&self, cluster: &SharedCluster) {
        let was_live = {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            let before = live.len();
            live.retain(|c| c.name != cluster.name);
            live.len() != before
        };
        if !was_live {
            return; // Another path (Ctrl-C, the final sweep) got there first.
        }
        match self.provider.destroy(&cluster.provisioned).await {
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
