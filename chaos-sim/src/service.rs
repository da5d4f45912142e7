//! The HTTP side: turns requests from `kube::Client` into store operations and answers as
//! kube-apiserver does.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use serde_json::{Value, json};

use super::error::ApiError;
use super::patch::{self, PatchKind};
use super::resources::{ResourceInfo, ResourceKey};
use super::router::{Query, ResourcePath, Route, parse_path};
use super::selector::Selectors;
use super::store::{StatusPolicy, Store};
use super::watch::{self, Start, WatchSpec};
use super::{ApiServer, discovery, limits, meta};

pub(crate) type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

/// kube-apiserver's default for watches without `timeoutSeconds` (`--min-request-timeout`).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

const AGGREGATED_DISCOVERY: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// One request, decoded.
struct Call {
    method: Method,
    query: Query,
    body: Bytes,
    headers: HeaderMap,
}

impl Call {
    fn header(&self, name: http::header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// `kube::Api::list_metadata` and friends ask for `PartialObjectMetadata`.
    fn metadata_only(&self) -> bool {
        self.header(ACCEPT).contains("as=PartialObjectMetadata")
    }

    /// `dryRun=All`: every check runs, nothing is stored.
    fn dry_run(&self) -> bool {
        self.query.get("dryRun") == Some("All")
    }

    fn wants_aggregated_discovery(&self) -> bool {
        self.header(ACCEPT).contains("as=APIGroupDiscoveryList")
    }
}

pub(crate) async fn handle(
    server: ApiServer,
    request: Request<kube::client::Body>,
) -> Response<ResponseBody> {
    server.count_request();
    let (parts, body) = request.into_parts();
    let body = match body.collect_bytes().await {
        Ok(body) => body,
        Err(e) => {
            return error_response(&ApiError::bad_request(format!(
                "could not read the request body: {e}"
            )));
        }
    };
    if let Err(e) = limits::check_body(&body) {
        return error_response(&e);
    }
    let call = Call {
        method: parts.method,
        query: Query::parse(parts.uri.query()),
        body,
        headers: parts.headers,
    };
    dispatch(&server, parts.uri.path(), &call).unwrap_or_else(|e| error_response(&e))
}

fn dispatch(
    server: &ApiServer,
    path: &str,
    call: &Call,
) -> Result<Response<ResponseBody>, ApiError> {
    let route = parse_path(path).ok_or_else(ApiError::no_route)?;
    if let Route::Resource(path) = route {
        return resource(server, call, path);
    }
    if call.method != Method::GET {
        return Err(ApiError::method_not_allowed());
    }
    let store = server.lock();
    let registry = &store.registry;
    match route {
        // kube-apiserver answers its health endpoints in plain text.
        Route::Health => Ok(response(
            200,
            "text/plain; charset=utf-8",
            Full::new(Bytes::from_static(b"ok")).boxed_unsync(),
        )),
        Route::Version => Ok(json_response(
            200,
            &discovery::version(server.git_version()),
        )),
        Route::CoreVersions if call.wants_aggregated_discovery() => {
            Ok(aggregated_response(&discovery::aggregated(registry, true)))
        }
        Route::CoreVersions => Ok(json_response(200, &discovery::core_versions())),
        Route::Groups if call.wants_aggregated_discovery() => {
            Ok(aggregated_response(&discovery::aggregated(registry, false)))
        }
        Route::Groups => Ok(json_response(200, &discovery::groups(registry))),
        Route::Group(group) => discovery::group(registry, &group)
            .map(|doc| json_response(200, &doc))
            .ok_or_else(ApiError::no_route),
        Route::ResourceList { group, version } => {
            discovery::resource_list(registry, &group, &version)
                .map(|doc| json_response(200, &doc))
                .ok_or_else(ApiError::no_route)
        }
        Route::Resource(_) => Err(ApiError::no_route()),
    }
}

/// The table's entry for a path; an unknown resource outside the built-in groups is generic
/// (its Kind is learned from the first object created).
fn resolve(store: &Store, path: &ResourcePath) -> Result<ResourceInfo, ApiError> {
    if let Some(info) = store
        .registry
        .find(&path.group, &path.version, &path.plural)
    {
        return Ok(info.clone());
    }
    if path.group.is_empty() || store.registry.is_built_in_group(&path.group) {
        return Err(ApiError::no_route());
    }
    Ok(ResourceInfo::generic(
        &path.group,
        &path.version,
        &path.plural,
        "",
        path.namespace.is_some(),
    ))
}

/// Where a request lands: the resource and the namespace (None = all namespaces, or
/// cluster-scoped).
struct Target {
    info: ResourceInfo,
    namespace: Option<String>,
    /// The `/status` subresource.
    status: bool,
}

impl Target {
    fn key(&self) -> ResourceKey {
        self.info.key()
    }

    /// The namespace of a single object: empty for cluster-scoped ones.
    fn object_namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or_default()
    }

    fn policy(&self) -> StatusPolicy {
        if self.status {
            StatusPolicy::OnlyStatus
        } else if self.info.has_status {
            StatusPolicy::KeepStatus
        } else {
            StatusPolicy::Whole
        }
    }

    fn served(&self, obj: Value, call: &Call) -> Value {
        meta::as_served(obj, &self.info.api_version(), call.metadata_only())
    }
}

fn resource(
    server: &ApiServer,
    call: &Call,
    path: ResourcePath,
) -> Result<Response<ResponseBody>, ApiError> {
    let info = resolve(&server.lock(), &path)?;
    // A cluster-scoped resource has no namespaced paths; a namespaced one is only listed
    // and watched across namespaces.
    if (!info.namespaced && path.namespace.is_some())
        || (info.namespaced && path.namespace.is_none() && path.name.is_some())
    {
        return Err(ApiError::no_route());
    }
    if path.subresource.as_deref() == Some("eviction") && info.is("", "pods") {
        return eviction(server, call, &path);
    }
    let status = match path.subresource.as_deref() {
        None => false,
        Some("status") if info.has_status => true,
        Some(_) => return Err(ApiError::no_route()),
    };
    let target = Target {
        info,
        namespace: path.namespace,
        status,
    };
    // Across namespaces, a namespaced resource can only be listed and watched.
    let all_namespaces = target.info.namespaced && target.namespace.is_none();
    match (&call.method, path.name) {
        (&Method::GET, None) if call.query.flag("watch") => watch(server, call, &target),
        (&Method::GET, None) => list(server, call, &target),
        (&Method::GET, Some(name)) => get(server, call, &target, &name),
        (&Method::POST | &Method::DELETE, None) if all_namespaces => {
            Err(ApiError::method_not_allowed())
        }
        (&Method::POST, None) => create(server, call, &target),
        (&Method::PUT, Some(name)) => replace(server, call, &target, &name),
        (&Method::PATCH, Some(name)) => patch(server, call, &target, &name),
        (&Method::DELETE, Some(name)) if !target.status => delete(server, call, &target, &name),
        (&Method::DELETE, None) => delete_collection(server, call, &target),
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// `POST pods/{name}/eviction`: the simulated control plane's eviction API.
fn eviction(
    server: &ApiServer,
    call: &Call,
    path: &ResourcePath,
) -> Result<Response<ResponseBody>, ApiError> {
    let (Some(ns), Some(name)) = (&path.namespace, &path.name) else {
        return Err(ApiError::no_route());
    };
    if call.method != Method::POST {
        return Err(ApiError::method_not_allowed());
    }
    let status = super::control::eviction::evict(server, ns, name)?;
    Ok(json_response(201, &status))
}

fn get(
    server: &ApiServer,
    call: &Call,
    target: &Target,
    name: &str,
) -> Result<Response<ResponseBody>, ApiError> {
    let store = server.lock();
    let obj = store
        .get(&target.key(), target.object_namespace(), name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&target.key(), name))?;
    Ok(json_response(200, &target.served(obj, call)))
}

fn list(
    server: &ApiServer,
    call: &Call,
    target: &Target,
) -> Result<Response<ResponseBody>, ApiError> {
    let selectors = Selectors::from_query(&call.query)?;
    let store = server.lock();
    let items = store.list(&target.key(), target.namespace.as_deref(), &selectors);
    let rv = store.resource_version();
    drop(store);
    Ok(json_response(200, &list_document(call, target, items, rv)))
}

fn list_document(call: &Call, target: &Target, items: Vec<Value>, rv: u64) -> Value {
    let (api_version, kind) = if call.metadata_only() {
        (
            "meta.k8s.io/v1".to_string(),
            "PartialObjectMetadataList".to_string(),
        )
    } else {
        (
            target.info.api_version(),
            format!("{}List", target.info.kind),
        )
    };
    let items: Vec<Value> = items
        .into_iter()
        .map(|obj| target.served(obj, call))
        .collect();
    json!({
        "kind": kind,
        "apiVersion": api_version,
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items,
    })
}

fn watch(
    server: &ApiServer,
    call: &Call,
    target: &Target,
) -> Result<Response<ResponseBody>, ApiError> {
    let selectors = Selectors::from_query(&call.query)?;
    let start =
        if call.query.flag("sendInitialEvents") {
            Start::Now { bookmark: true }
        } else {
            match call.query.get("resourceVersion").unwrap_or_default() {
                "" | "0" => Start::Now { bookmark: false },
                rv => Start::After(rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))
                })?),
            }
        };
    let timeout = call
        .query
        .get("timeoutSeconds")
        .and_then(|s| s.parse().ok())
        .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs);
    let spec = WatchSpec {
        info: target.info.clone(),
        namespace: target.namespace.clone(),
        selectors,
        start,
        timeout,
        metadata_only: call.metadata_only(),
    };
    Ok(stream_response(watch::start(server, spec)))
}

/// The request body as a JSON object.
fn body_object(call: &Call) -> Result<Value, ApiError> {
    let obj = patch::parse_body(&call.body)?;
    if obj.is_object() {
        Ok(obj)
    } else {
        Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ))
    }
}

/// Puts the object in the request's namespace, refusing one that names another.
fn place_in_namespace(target: &Target, obj: &mut Value) -> Result<(), ApiError> {
    if !target.info.namespaced {
        return Ok(());
    }
    let ns = target.object_namespace();
    match meta::namespace(obj) {
        "" => meta::set(obj, "namespace", ns),
        body_ns if body_ns == ns => {}
        _ => {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    Ok(())
}

/// A PUT or PATCH must not rename the object.
fn check_name(obj: &Value, name: &str) -> Result<(), ApiError> {
    let body_name = meta::name(obj);
    if body_name == name {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )))
    }
}

fn create(
    server: &ApiServer,
    call: &Call,
    target: &Target,
) -> Result<Response<ResponseBody>, ApiError> {
    let mut obj = body_object(call)?;
    place_in_namespace(target, &mut obj)?;
    let created = server.lock().run(call.dry_run(), |store| {
        create_object(store, target.info.clone(), obj)
    })?;
    Ok(json_response(201, &target.served(created, call)))
}

/// Creates `obj`, learning the Kind of a generic resource from it.
fn create_object(store: &mut Store, mut info: ResourceInfo, obj: Value) -> Result<Value, ApiError> {
    let learn = info.kind.is_empty();
    if learn {
        let kind = obj["kind"]
            .as_str()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ApiError::bad_request(format!("Object 'Kind' is missing in '{obj}'")))?;
        info.kind = kind.to_string();
        info.singular = kind.to_lowercase();
    }
    let created = store.create(&info, obj)?;
    if learn {
        store.learn(info);
    }
    Ok(created)
}

fn replace(
    server: &ApiServer,
    call: &Call,
    target: &Target,
    name: &str,
) -> Result<Response<ResponseBody>, ApiError> {
    let mut obj = body_object(call)?;
    check_name(&obj, name)?;
    place_in_namespace(target, &mut obj)?;
    let updated = server.lock().run(call.dry_run(), |store| {
        store.update(&target.info, obj, target.policy())
    })?;
    Ok(json_response(200, &target.served(updated, call)))
}

fn patch(
    server: &ApiServer,
    call: &Call,
    target: &Target,
    name: &str,
) -> Result<Response<ResponseBody>, ApiError> {
    let content_type = call.header(CONTENT_TYPE);
    let kind = PatchKind::from_content_type(content_type)
        .ok_or_else(|| ApiError::unsupported_media_type(content_type))?;
    if kind == PatchKind::Apply
        && call
            .query
            .get("fieldManager")
            .unwrap_or_default()
            .is_empty()
    {
        return Err(ApiError::new(
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    let (code, obj) = server.lock().run(call.dry_run(), |store| {
        patch_in(store, call, target, kind, name)
    })?;
    Ok(json_response(code, &target.served(obj, call)))
}

/// Applies a patch under one lock; returns the status code (201 when apply created) and object.
fn patch_in(
    store: &mut Store,
    call: &Call,
    target: &Target,
    kind: PatchKind,
    name: &str,
) -> Result<(u16, Value), ApiError> {
    let key = target.key();
    let Some(current) = store.get(&key, target.object_namespace(), name).cloned() else {
        // Server-side apply creates what is missing.
        if kind == PatchKind::Apply && !target.status {
            let mut obj = body_object(call)?;
            if meta::name(&obj).is_empty() {
                meta::set(&mut obj, "name", name);
            }
            check_name(&obj, name)?;
            place_in_namespace(target, &mut obj)?;
            return Ok((201, create_object(store, target.info.clone(), obj)?));
        }
        return Err(ApiError::not_found(&key, name));
    };
    let mut patched = patch::apply(kind, &current, &call.body)?;
    check_name(&patched, name)?;
    place_in_namespace(target, &mut patched)?;
    Ok((200, store.update(&target.info, patched, target.policy())?))
}

fn delete(
    server: &ApiServer,
    call: &Call,
    target: &Target,
    name: &str,
) -> Result<Response<ResponseBody>, ApiError> {
    let key = target.key();
    let ns = target.object_namespace();
    let options = delete_options(call)?;
    let deleted = server.lock().run(options.dry_run, |store| {
        let current = store
            .get(&key, ns, name)
            .ok_or_else(|| ApiError::not_found(&key, name))?;
        for (field, wanted) in &options.preconditions {
            if *wanted != meta::str_field(current, field) {
                return Err(ApiError::conflict(&key, name));
            }
        }
        store.delete(&key, ns, name)
    })?;
    Ok(json_response(200, &target.served(deleted, call)))
}

/// What of a `DeleteOptions` body is honoured.
struct DeleteOptions {
    dry_run: bool,
    /// (`uid` or `resourceVersion`, value the stored object must still have)
    preconditions: Vec<(&'static str, String)>,
}

/// kube sends `DeleteOptions` in the body, `dryRun` included.
fn delete_options(call: &Call) -> Result<DeleteOptions, ApiError> {
    let options = if call.body.is_empty() {
        Value::Null
    } else {
        patch::parse_body(&call.body)?
    };
    let dry_run_in_body = options["dryRun"]
        .as_array()
        .is_some_and(|modes| modes.iter().any(|m| m == "All"));
    let preconditions = ["uid", "resourceVersion"]
        .into_iter()
        .filter_map(|field| {
            let wanted = options["preconditions"][field].as_str()?;
            Some((field, wanted.to_string()))
        })
        .collect();
    Ok(DeleteOptions {
        dry_run: call.dry_run() || dry_run_in_body,
        preconditions,
    })
}

fn delete_collection(
    server: &ApiServer,
    call: &Call,
    target: &Target,
) -> Result<Response<ResponseBody>, ApiError> {
    let selectors = Selectors::from_query(&call.query)?;
    let options = delete_options(call)?;
    let (deleted, rv) = server.lock().run(options.dry_run, |store| {
        let deleted =
            store.delete_collection(&target.key(), target.namespace.as_deref(), &selectors);
        (deleted, store.resource_version())
    });
    Ok(json_response(
        200,
        &list_document(call, target, deleted, rv),
    ))
}

fn json_response(code: u16, body: &Value) -> Response<ResponseBody> {
    response(
        code,
        "application/json",
        Full::new(Bytes::from(body.to_string())).boxed_unsync(),
    )
}

fn aggregated_response(body: &Value) -> Response<ResponseBody> {
    response(
        200,
        AGGREGATED_DISCOVERY,
        Full::new(Bytes::from(body.to_string())).boxed_unsync(),
    )
}

fn error_response(error: &ApiError) -> Response<ResponseBody> {
    json_response(error.code, &error.status())
}

fn stream_response(lines: impl Stream<Item = Bytes> + Send + 'static) -> Response<ResponseBody> {
    let frames = lines.map(|line| Ok::<_, Infallible>(Frame::data(line)));
    response(
        200,
        "application/json",
        StreamBody::new(frames).boxed_unsync(),
    )
}

fn response(code: u16, content_type: &'static str, body: ResponseBody) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
