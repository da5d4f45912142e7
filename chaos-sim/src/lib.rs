//! An in-memory Kubernetes API server, served to a real [`kube::Client`] through a tower
//! service: no socket, no TLS, no etcd.
//!
//! It answers what `kube::Api`, `kube::Discovery` and `kube::runtime` send as kube-apiserver
//! would: discovery, CRUD, the four patch types, the status subresource, label and field
//! selectors, watches resumable from a resourceVersion, and `Status` errors with the real
//! codes and reasons. It also does at once what the apiserver cannot do without its own
//! controllers: finalizer-aware deletion, namespace cleanup, and CRD establishment.
//!
//! Nothing else runs: no scheduler, kubelet, or workload controllers. Pods stay `Pending`
//! until someone writes their status. A simulated control plane can watch every change
//! through [`ApiServer::subscribe`] and write through the direct methods
//! ([`ApiServer::create`], [`ApiServer::update`], ...), which take the same path as HTTP
//! writes except that [`ApiServer::update`] replaces `.status` too.
//!
//! The namespaces a cluster starts with (`default`, `kube-system`, `kube-public`,
//! `kube-node-lease`) exist from the start; the first three cannot be deleted, as on a real
//! cluster. What the real API server and etcd refuse for size alone is refused too: a request
//! body over 3 MiB (413) and an object over etcd's 1.5 MiB request limit (500).

pub mod control;
mod discovery;
mod error;
mod limits;
mod meta;
mod patch;
mod resources;
mod router;
mod selector;
mod service;
mod store;
mod strategy;
mod watch;

use std::convert::Infallible;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::Value;
use tokio::sync::broadcast;

pub use error::ApiError;
use resources::{ResourceKey, guess_plural, split_api_version};
use store::{StatusPolicy, Store};

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Gone from the store.
    Deleted,
}

/// One change, as seen by [`ApiServer::subscribe`]: the object after the change (for
/// `Deleted`, the last state, with the resourceVersion of the deletion).
#[derive(Clone, Debug, PartialEq)]
pub struct WatchEvent {
    /// What happened.
    pub kind: EventKind,
    /// The object after the change.
    pub object: Value,
}

/// The simulated API server. Cheap to clone: every clone serves the same objects.
#[derive(Clone)]
pub struct ApiServer {
    inner: Arc<Inner>,
}

struct Inner {
    store: Mutex<Store>,
    git_version: String,
    requests: AtomicU64,
}

impl ApiServer {
    /// A server reporting `git_version` (e.g. `v1.29.14`) at `/version`.
    pub fn new(git_version: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: Mutex::new(Store::new()),
                git_version: git_version.to_string(),
                requests: AtomicU64::new(0),
            }),
        }
    }

    /// A fresh client bound to this server, with default namespace `default`.
    ///
    /// Must be called inside a Tokio runtime: the client spawns its request buffer there.
    pub fn client(&self) -> kube::Client {
        let server = self.clone();
        let service = tower::service_fn(move |request| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(service::handle(server, request).await) }
        });
        kube::Client::new(service, "default")
    }

    /// Serves this API over plain HTTP on `listener`, for tests that need a kubeconfig (the kind
    /// provider's lifecycle with a fake `kind`).
    #[cfg(feature = "serve-http")]
    pub async fn serve_http(self, listener: tokio::net::TcpListener) {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(self.clone().serve_connection(stream));
        }
    }

    /// Serves this API over one HTTP/1.1 connection on any byte stream: a TCP stream, or a TLS
    /// stream wrapped around one (the kind stand-in's kube-apiserver). Returns when the
    /// connection closes; a broken connection is the client's business, so its error is only
    /// returned, never logged here.
    #[cfg(feature = "serve-http")]
    pub async fn serve_connection<IO>(self, io: IO) -> Result<(), hyper::Error>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        use http_body_util::BodyExt;
        let server = self;
        let respond =
            hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let server = server.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    let bytes = body
                        .collect()
                        .await
                        .map(|c| c.to_bytes())
                        .unwrap_or_default();
                    let request =
                        http::Request::from_parts(parts, kube::client::Body::from(bytes.to_vec()));
                    Ok::<_, Infallible>(service::handle(server, request).await)
                }
            });
        let io = hyper_util::rt::TokioIo::new(io);
        hyper::server::conn::http1::Builder::new()
            .serve_connection(io, respond)
            .await
    }

    /// Every object the server holds, with the resourceVersion and id counters, as JSON: enough
    /// for [`ApiServer::restore`] to serve the same objects in another process (the kind
    /// stand-in keeps its API across container restarts so).
    pub fn snapshot(&self) -> Value {
        self.lock().snapshot()
    }

    /// A server reporting `git_version` that serves the objects of a [`ApiServer::snapshot`],
    /// with their uids and resourceVersions. Watches from before the snapshot get 410 Gone, as
    /// after an etcd compaction, so clients relist.
    pub fn restore(git_version: &str, snapshot: &Value) -> Result<Self, ApiError> {
        let server = Self::new(git_version);
        server.lock().restore(snapshot)?;
        Ok(server)
    }

    /// The resourceVersion of the latest write: it changes with every write.
    pub fn resource_version(&self) -> u64 {
        self.lock().resource_version()
    }

    /// HTTP requests served so far, by every client.
    pub fn request_count(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// Creates an object; `apiVersion`, `kind` and `metadata.namespace` say where it goes.
    /// A Kind the server does not know is stored as a generic resource with a guessed plural.
    pub fn create(&self, obj: Value) -> Result<Value, ApiError> {
        let (api_version, kind) = type_of(&obj)?;
        let mut store = self.lock();
        let info = store.resolve_kind(&api_version, &kind, !meta::namespace(&obj).is_empty());
        store.create(&info, obj)
    }

    /// The stored object, if any. `namespace` is ignored for cluster-scoped kinds.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let store = self.lock();
        let info = store.registry.find_kind(api_version, kind)?;
        let ns = if info.namespaced {
            namespace.unwrap_or_default()
        } else {
            ""
        };
        store.get(&info.key(), ns, name).cloned()
    }

    /// Objects of a kind in one namespace, or in all of them when `namespace` is None.
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let store = self.lock();
        let Some(info) = store.registry.find_kind(api_version, kind) else {
            return Vec::new();
        };
        let namespace = namespace.filter(|_| info.namespaced);
        store.list(&info.key(), namespace, &Default::default())
    }

    /// Replaces a whole object, `.status` included, as the control plane does. A set
    /// `metadata.resourceVersion` must be the current one (409 otherwise).
    pub fn update(&self, obj: Value) -> Result<Value, ApiError> {
        let (api_version, kind) = type_of(&obj)?;
        let mut store = self.lock();
        let Some(info) = store.registry.find_kind(&api_version, &kind).cloned() else {
            let (group, _) = split_api_version(&api_version);
            let key = ResourceKey::new(group, &guess_plural(&kind));
            return Err(ApiError::not_found(&key, meta::name(&obj)));
        };
        store.update(&info, obj, StatusPolicy::Whole)
    }

    /// Deletes an object, returning its last state. One with finalizers is only marked for
    /// deletion; a namespace takes everything inside with it.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let mut store = self.lock();
        let Some(info) = store.registry.find_kind(api_version, kind).cloned() else {
            let (group, _) = split_api_version(api_version);
            return Err(ApiError::not_found(
                &ResourceKey::new(group, &guess_plural(kind)),
                name,
            ));
        };
        let ns = if info.namespaced {
            namespace.unwrap_or_default()
        } else {
            ""
        };
        store.delete(&info.key(), ns, name)
    }

    /// Every change from now on, HTTP or direct, in order. A receiver that falls more than
    /// 10 000 events behind gets `RecvError::Lagged`.
    pub fn subscribe(&self) -> broadcast::Receiver<WatchEvent> {
        self.lock().subscribe()
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // The store stays consistent even if a holder panicked: every write is a single insert.
        self.inner
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn git_version(&self) -> &str {
        &self.inner.git_version
    }

    fn count_request(&self) {
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiServer")
            .field("git_version", &self.inner.git_version)
            .field("resource_version", &self.lock().resource_version())
            .field("requests", &self.request_count())
            .finish()
    }
}

/// `apiVersion` and `kind` of an object given to the direct methods.
fn type_of(obj: &Value) -> Result<(String, String), ApiError> {
    let field = |name: &str| {
        obj.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    match (obj.is_object(), field("apiVersion"), field("kind")) {
        (true, Some(api_version), Some(kind)) => Ok((api_version.to_string(), kind.to_string())),
        _ => Err(ApiError::bad_request(
            "the object must be a JSON object with apiVersion and kind",
        )),
    }
}
