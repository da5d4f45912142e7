//! Watch streams: newline-delimited JSON events read from the store's history.
//!
//! A stream never subscribes to anything that could drop events: it remembers the last
//! resourceVersion it has seen and reads the history after it each time the store's
//! resourceVersion moves. The initial state and that resourceVersion are taken under one lock, so
//! nothing is lost or sent twice between them.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use super::ApiServer;
use super::EventKind;
use super::meta;
use super::resources::ResourceInfo;
use super::selector::Selectors;
use super::store::Change;

/// Where a watch starts.
pub(crate) enum Start {
    /// Synthetic ADDED events for the current state first (`resourceVersion` "" or "0"); with
    /// `bookmark`, then the bookmark that ends `sendInitialEvents`.
    Now { bookmark: bool },
    /// Every change after this resourceVersion.
    After(u64),
}

pub(crate) struct WatchSpec {
    pub info: ResourceInfo,
    pub namespace: Option<String>,
    pub selectors: Selectors,
    pub start: Start,
    pub timeout: Duration,
    pub metadata_only: bool,
}

impl WatchSpec {
    /// The event type this watch reports for a change, if any.
    fn event_type(&self, change: &Change) -> Option<&'static str> {
        if change.resource != self.info.key() {
            return None;
        }
        if let Some(ns) = &self.namespace
            && meta::namespace(&change.object) != ns
        {
            return None;
        }
        let matches_now = self.selectors.matches(&change.object);
        match change.kind {
            EventKind::Added => matches_now.then_some("ADDED"),
            EventKind::Deleted => matches_now.then_some("DELETED"),
            EventKind::Modified => {
                let matched_before = change
                    .old
                    .as_ref()
                    .is_some_and(|old| self.selectors.matches(old));
                match (matched_before, matches_now) {
                    (true, true) => Some("MODIFIED"),
                    (false, true) => Some("ADDED"),
                    (true, false) => Some("DELETED"),
                    (false, false) => None,
                }
            }
        }
    }

    fn event_line(&self, event_type: &str, object: &Value) -> Bytes {
        let object = meta::as_served(object.clone(), &self.info.api_version(), self.metadata_only);
        line(&json!({"type": event_type, "object": object}))
    }
}

fn line(event: &Value) -> Bytes {
    let mut bytes = event.to_string().into_bytes();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

struct WatchState {
    server: ApiServer,
    spec: WatchSpec,
    /// Every change up to here has been looked at.
    last_rv: u64,
    wake: watch::Receiver<u64>,
    pending: VecDeque<Bytes>,
    deadline: Instant,
    /// Set after an ERROR event: the stream ends once `pending` is drained.
    done: bool,
}

/// The response body of a watch request.
pub(crate) fn start(
    server: &ApiServer,
    spec: WatchSpec,
) -> impl Stream<Item = Bytes> + Send + 'static {
    let store = server.lock();
    let mut wake = store.rv_receiver();
    wake.mark_unchanged();
    let mut pending = VecDeque::new();
    let last_rv = match spec.start {
        Start::After(rv) => rv,
        Start::Now { bookmark } => {
            let objects = store.list(&spec.info.key(), spec.namespace.as_deref(), &spec.selectors);
            pending.extend(objects.iter().map(|obj| spec.event_line("ADDED", obj)));
            let rv = store.resource_version();
            if bookmark {
                pending.push_back(line(&json!({
                    "type": "BOOKMARK",
                    "object": {
                        "kind": spec.info.kind,
                        "apiVersion": spec.info.api_version(),
                        "metadata": {
                            "resourceVersion": rv.to_string(),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        },
                    },
                })));
            }
            rv
        }
    };
    drop(store);
    let state = WatchState {
        server: server.clone(),
        deadline: Instant::now() + spec.timeout,
        spec,
        last_rv,
        wake,
        pending,
        done: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        let line = state.next_line().await?;
        Some((line, state))
    })
}

impl WatchState {
    async fn next_line(&mut self) -> Option<Bytes> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Some(line);
            }
            if self.done {
                return None;
            }
            // Marked seen before reading, so a change made after the read still wakes us.
            self.wake.mark_unchanged();
            self.catch_up();
            if !self.pending.is_empty() || self.done {
                continue;
            }
            match tokio::time::timeout_at(self.deadline, self.wake.changed()).await {
                Ok(Ok(())) => {}
                // timeoutSeconds elapsed, or the server is gone.
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    fn catch_up(&mut self) {
        let store = self.server.lock();
        match store.changes_after(self.last_rv) {
            Ok(changes) => {
                for change in changes {
                    if let Some(event_type) = self.spec.event_type(change) {
                        self.pending
                            .push_back(self.spec.event_line(event_type, &change.object));
                    }
                }
            }
            Err(expired) => {
                self.pending
                    .push_back(line(&json!({"type": "ERROR", "object": expired.status()})));
                self.done = true;
            }
        }
        self.last_rv = store.resource_version();
    }
}
