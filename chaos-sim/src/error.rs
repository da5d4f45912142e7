//! API failures, shaped like the `Status` objects a real kube-apiserver returns.

use serde_json::{Map, Value, json};

use super::resources::ResourceKey;

/// A failed API call: the HTTP side renders it as a `metav1.Status` with the same code, reason
/// and message, so `kube::Error::Api(s)` carries exactly these values.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{reason} ({code}): {message}")]
pub struct ApiError {
    /// HTTP status code, e.g. 404.
    pub code: u16,
    /// Machine-readable reason, e.g. `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`.
    pub reason: String,
    /// Human-readable message, worded like the real apiserver's.
    pub message: String,
    /// `Status.details`; `Null` when the real apiserver sends none.
    details: Value,
}

/// One `Status.details.causes` entry of an `Invalid` error.
pub(crate) struct Cause {
    pub reason: &'static str,
    pub field: String,
    pub message: String,
}

impl ApiError {
    /// An error with no `details`.
    pub fn new(code: u16, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
            message: message.into(),
            details: Value::Null,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// The `Status` object the HTTP side sends for this error.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        });
        // `metav1.Status.Reason` is `omitempty`: an error the apiserver could not classify
        // (etcd's "request is too large") has none.
        if !self.reason.is_empty() {
            status["reason"] = self.reason.clone().into();
        }
        if !self.details.is_null() {
            status["details"] = self.details.clone();
        }
        status
    }

    pub(crate) fn not_found(resource: &ResourceKey, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", resource.qualified()),
        )
        .with_details(object_details(resource, name))
    }

    /// A path the server does not serve at all.
    pub(crate) fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    pub(crate) fn already_exists(resource: &ResourceKey, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", resource.qualified()),
        )
        .with_details(object_details(resource, name))
    }

    pub(crate) fn conflict(resource: &ResourceKey, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                resource.qualified()
            ),
        )
        .with_details(object_details(resource, name))
    }

    /// 422: the object failed validation. Real `Invalid` errors name the Kind, not the plural.
    pub(crate) fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> Self {
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let summary = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect::<Vec<_>>()
            .join(", ");
        let mut details = Map::new();
        details.insert("name".into(), name.into());
        if !group.is_empty() {
            details.insert("group".into(), group.into());
        }
        details.insert("kind".into(), kind.into());
        details.insert(
            "causes".into(),
            causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect(),
        );
        Self::new(
            422,
            "Invalid",
            format!("{qualified} \"{name}\" is invalid: {summary}"),
        )
        .with_details(Value::Object(details))
    }

    /// 422 without a named object (e.g. a JSON patch that cannot be applied).
    pub(crate) fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(json!({}))
    }

    pub(crate) fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({content_type}) - accepted media \
                 types include: application/json-patch+json, application/merge-patch+json, \
                 application/apply-patch+yaml, application/strategic-merge-patch+json"
            ),
        )
        .with_details(json!({}))
    }

    /// 403 from the NamespaceLifecycle admission plugin.
    pub(crate) fn namespace_terminating(resource: &ResourceKey, name: &str, ns: &str) -> Self {
        let mut details = object_details(resource, name);
        details["causes"] = json!([{
            "reason": "NamespaceTerminating",
            "message": format!("namespace {ns} is being terminated"),
            "field": "metadata.namespace",
        }]);
        Self::new(
            403,
            "Forbidden",
            format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} \
                 because it is being terminated",
                resource.qualified()
            ),
        )
        .with_details(details)
    }

    /// 403 as `errors.NewForbidden` words it (k8s.io/apimachinery/pkg/api/errors/errors.go):
    /// `{resource} "{name}" is forbidden: {reason}`.
    pub(crate) fn forbidden(resource: &ResourceKey, name: &str, reason: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!("{} \"{name}\" is forbidden: {reason}", resource.qualified()),
        )
        .with_details(object_details(resource, name))
    }

    /// 413 as `errors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", limit))` words
    /// it (k8s.io/apiserver/pkg/endpoints/handlers/rest.go, `limitedReadBody`).
    pub(crate) fn request_entity_too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 500 with no reason and etcd's own message: what kube-apiserver answers when etcd
    /// refuses a request over its `--max-request-bytes` (see `limits::ETCD_MAX_REQUEST_BYTES`).
    pub(crate) fn etcd_request_too_large() -> Self {
        Self::new(500, "", "etcdserver: request is too large")
    }

    /// 410 for a watch that starts before the kept history.
    pub(crate) fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    pub(crate) fn internal(message: &str) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
        .with_details(json!({"causes": [{"message": message}]}))
    }
}

fn object_details(resource: &ResourceKey, name: &str) -> Value {
    let mut details = Map::new();
    details.insert("name".into(), name.into());
    if !resource.group.is_empty() {
        details.insert("group".into(), resource.group.clone().into());
    }
    details.insert("kind".into(), resource.plural.clone().into());
    Value::Object(details)
}
