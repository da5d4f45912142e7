//! Waits driven by watches, never by sleep loops. Each has a timeout, and its error says what it
//! waited for and what it saw last.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// A wait that ran out of time.
#[derive(Debug, thiserror::Error)]
#[error(
    "timed out after {} waiting for {waited_for}; last seen: {last_seen}",
    humantime::format_duration(*.timeout)
)]
pub struct WaitError {
    /// What was awaited, e.g. "3 nodes Ready".
    pub waited_for: String,
    /// How long it waited.
    pub timeout: Duration,
    /// The last state seen, or the last error from the API.
    pub last_seen: String,
}

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
        let mut states = std::pin::pin!(states(api, config));
        while let Some(state) = states.next().await {
            let current = match state {
                Ok(current) => current,
                Err(err) => {
                    last_seen = format!("watch error: {err}");
                    continue;
                }
            };
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

/// Every complete state of the objects `config` selects: after each (re)list, and after each
/// change that follows it. Watch errors come through (the watcher retries with backoff).
pub(crate) fn states<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = Result<Vec<K>, watcher::Error>> + Send
where
    K: Resource + Clone + DeserializeOwned + fmt::Debug + Send + 'static,
{
    let mut watched = WatchedSet::default();
    watcher(api, config)
        .default_backoff()
        .filter_map(move |event| std::future::ready(event.map(|e| watched.apply(e)).transpose()))
}

/// The objects a watch currently sees, rebuilt from its events. A state is complete once the
/// (re)list that starts with `Init` has ended with `InitDone`: nothing is judged before.
struct WatchedSet<K> {
    objects: BTreeMap<(Option<String>, String), K>,
    relisting: BTreeMap<(Option<String>, String), K>,
}

impl<K> Default for WatchedSet<K> {
    fn default() -> Self {
        WatchedSet {
            objects: BTreeMap::new(),
            relisting: BTreeMap::new(),
        }
    }
}

impl<K: Resource + Clone> WatchedSet<K> {
    /// Takes in one event; returns the objects now seen when they form a complete state.
    fn apply(&mut self, event: watcher::Event<K>) -> Option<Vec<K>> {
        let key = |obj: &K| (obj.namespace(), obj.name_any());
        match event {
            watcher::Event::Init => {
                self.relisting.clear();
                return None;
            }
            watcher::Event::InitApply(obj) => {
                self.relisting.insert(key(&obj), obj);
                return None;
            }
            watcher::Event::InitDone => self.objects = std::mem::take(&mut self.relisting),
            watcher::Event::Apply(obj) => {
                self.objects.insert(key(&obj), obj);
            }
            watcher::Event::Delete(obj) => {
                self.objects.remove(&key(&obj));
            }
        }
        Some(self.objects.values().cloned().collect())
    }
}
