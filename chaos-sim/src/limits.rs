//! What kube-apiserver and etcd refuse however valid the object: a request body over the API
//! server's limit, an object too large for one etcd request, and the deletion of a namespace the
//! NamespaceLifecycle admission plugin keeps alive. Without these a test could pass on the sim
//! and fail on kind for a reason the sim hid.

use serde_json::Value;

use super::error::ApiError;
use super::resources::{Origin, ResourceInfo, ResourceKey};

/// kube-apiserver reads at most this many bytes of a write's body (create, update, patch,
/// delete) and answers 413 beyond: `MaxRequestBodyBytes: int64(3 * 1024 * 1024)` in
/// `NewConfig` (k8s.io/apiserver/pkg/server/config.go), enforced by `limitedReadBody`
/// (k8s.io/apiserver/pkg/endpoints/handlers/rest.go) with
/// `errors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", limit))`. kube-apiserver
/// has no flag for it. Twice etcd's limit, the comment there says, because the body may be
/// JSON while what is stored is protobuf.
pub(crate) const MAX_REQUEST_BODY_BYTES: usize = 3 * 1024 * 1024;

/// etcd refuses a request larger than `--max-request-bytes`, whose default is
/// `DefaultMaxRequestBytes = 1.5 * 1024 * 1024` (etcd server/embed/config.go); kubeadm, and so
/// kind, does not set the flag. etcd answers `ErrGRPCRequestTooLarge`, "etcdserver: request is
/// too large" (api/v3rpc/rpctypes/error.go), which kube-apiserver does not map to a `Status`:
/// `ErrorToAPIStatus` (k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/status.go)
/// turns it into a 500 with no reason and etcd's message (kubernetes/kubernetes#112152, open).
pub(crate) const ETCD_MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// Namespaces that may not be deleted: the NamespaceLifecycle admission plugin is registered
/// with `sets.NewString(metav1.NamespaceDefault, metav1.NamespaceSystem,
/// metav1.NamespacePublic)` (k8s.io/apiserver/pkg/admission/plugin/namespace/lifecycle/
/// admission.go, `Register`; the same in every release since 1.29). `kube-node-lease` is not
/// among them: it can be deleted.
pub(crate) const IMMORTAL_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

/// 413 for a request body over [`MAX_REQUEST_BODY_BYTES`].
pub(crate) fn check_body(body: &[u8]) -> Result<(), ApiError> {
    if body.len() > MAX_REQUEST_BODY_BYTES {
        return Err(ApiError::request_entity_too_large(MAX_REQUEST_BODY_BYTES));
    }
    Ok(())
}

/// 403, as `Lifecycle.Admit` answers the deletion of an immortal namespace.
pub(crate) fn check_namespace_deletion(key: &ResourceKey, name: &str) -> Result<(), ApiError> {
    if IMMORTAL_NAMESPACES.contains(&name) {
        return Err(ApiError::forbidden(
            key,
            name,
            "this namespace may not be deleted",
        ));
    }
    Ok(())
}

/// 500, as kube-apiserver relays etcd's refusal, for an object whose write certainly exceeds
/// [`ETCD_MAX_REQUEST_BYTES`].
pub(crate) fn check_stored_size(info: &ResourceInfo, obj: &Value) -> Result<(), ApiError> {
    if stored_size_lower_bound(info, obj) > ETCD_MAX_REQUEST_BYTES {
        return Err(ApiError::etcd_request_too_large());
    }
    Ok(())
}

/// A lower bound on the etcd request that stores `obj`, so that the sim refuses only what etcd
/// certainly refuses. kube-apiserver stores custom resources as JSON and built-in kinds as
/// protobuf (`--storage-media-type`, default `application/vnd.kubernetes.protobuf`), which
/// writes every string's bytes as they are but no field name, and `bytes` fields (a Secret's
/// `data`, a ConfigMap's `binaryData`) decoded from their base64. The etcd key
/// (`/registry/...`) comes on top.
fn stored_size_lower_bound(info: &ResourceInfo, obj: &Value) -> usize {
    let key = "/registry//".len()
        + info.group.len()
        + info.plural.len()
        + obj["metadata"]["namespace"].as_str().map_or(0, str::len)
        + obj["metadata"]["name"].as_str().map_or(0, str::len);
    let value = match info.origin {
        Origin::Crd | Origin::Generic => serde_json::to_vec(obj).map_or(0, |json| json.len()),
        Origin::BuiltIn => {
            let base64_field = match (info.group.as_str(), info.plural.as_str()) {
                ("", "secrets") => Some("data"),
                ("", "configmaps") => Some("binaryData"),
                _ => None,
            };
            obj.as_object().map_or(0, |fields| {
                fields
                    .iter()
                    .map(|(field, value)| match base64_field {
                        Some(bytes) if field == bytes => string_bytes(value) * 3 / 4,
                        _ => string_bytes(value),
                    })
                    .sum()
            })
        }
    };
    key + value
}

/// The bytes of every string value under `value` (map keys are not counted: in protobuf a
/// struct's field names are not written).
fn string_bytes(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len(),
        Value::Array(items) => items.iter().map(string_bytes).sum(),
        Value::Object(fields) => fields.values().map(string_bytes).sum(),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn built_in(group: &str, plural: &str) -> ResourceInfo {
        ResourceInfo {
            origin: Origin::BuiltIn,
            ..ResourceInfo::generic(group, "v1", plural, "Kind", true)
        }
    }

    #[test]
    fn a_secret_counts_its_data_decoded_and_a_custom_resource_its_json() {
        let data = "A".repeat(4000);
        let secret = json!({"metadata": {"name": "s", "namespace": "n"}, "data": {"k": data}});
        let bound = stored_size_lower_bound(&built_in("", "secrets"), &secret);
        assert!((3000..3100).contains(&bound), "{bound}");
        let config_map = json!({"metadata": {"name": "s", "namespace": "n"}, "data": {"k": data}});
        let bound = stored_size_lower_bound(&built_in("", "configmaps"), &config_map);
        assert!((4000..4100).contains(&bound), "{bound}");
        let custom = ResourceInfo::generic("example.com", "v1", "things", "Thing", true);
        let json_len = serde_json::to_vec(&config_map).unwrap().len();
        assert!(stored_size_lower_bound(&custom, &config_map) > json_len);
    }
}
