//! Waits driven by watches, never by sleep loops. Each has a timeout, and its error says what it
//! waited for and what it saw last.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// A wait that ran out of time.
#[derive(Debug)]
pub struct WaitError {
    /// What was awaited, e.g. "3 nodes Ready".
    pub waited_for: String,
    pub timeout: Duration,
    /// The last state seen, or the last error from the API.
    pub last_seen: String,
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {} waiting for {}; last seen: {}",
            humantime::format_duration(self.timeout),
            self.waited_for,
            self.last_seen
        )
    }
}

impl std::error::Error for WaitError {}

/// Waits until `condition` holds for the whole set of objects that `config` selects.
///
/// `condition` sees every object currently in the set (after the initial list, and after each
/// change) and answers `Ok(())` when satisfied, or `Err(what it sees)` otherwise. Returns the set
/// that satisfied it.
pub async fn until_list<K>(
    api: Api<K>,
    config: watcher::Config,
    waited_for: impl Into<String>,
    timeout: Duration,
    mut condition: impl FnMut(&[K]) -> Result<(), String>,
) -> Result<Vec<K>, WaitError>
where
    K: Resource + Clone + DeserializeOwned + fmt::Debug + Send + 'static,
{
    let mut last_seen = String::from("nothing yet (no answer from the API)");
    let watch = async {
        let mut objects: BTreeMap<(Option<String>, String), K> = BTreeMap::new();
        let mut initial: BTreeMap<(Option<String>, String), K> = BTreeMap::new();
        let mut events = std::pin::pin!(watcher(api, config).default_backoff());
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Init) => {
                    // A (re)list starts: judge nothing until it is complete.
                    initial.clear();
                    continue;
                }
                Ok(watcher::Event::InitApply(obj)) => {
                    initial.insert(key(&obj), obj);
                    continue;
                }
                Ok(watcher::Event::InitDone) => objects = std::mem::take(&mut initial),
                Ok(watcher::Event::Apply(obj)) => {
                    objects.insert(key(&obj), obj);
                }
                Ok(watcher::Event::Delete(obj)) => {
                    objects.remove(&key(&obj));
                }
                Err(err) => {
                    last_seen = format!("watch error: {err}");
                    continue;
                }
            }
            let current: Vec<K> = objects.values().cloned().collect();
            match condition(&current) {
                Ok(()) => return Some(current),
                Err(seen) => last_seen = seen,
            }
        }
        None
    };
    match tokio::time::timeout(timeout, watch).await {
        Ok(Some(objects)) => Ok(objects),
        Ok(None) => Err(WaitError {
            waited_for: waited_for.into(),
            timeout,
            last_seen: format!("{last_seen} (the watch ended)"),
        }),
        Err(_) => Err(WaitError {
            waited_for: waited_for.into(),
            timeout,
            last_seen,
        }),
    }
}

fn key<K: Resource>(obj: &K) -> (Option<String>, String) {
    (obj.namespace(), obj.name_any())
}
