//! PATCH bodies: JSON merge (RFC 7386), strategic merge, server-side apply and JSON patch
//! (RFC 6902).

use serde_json::Value;

use super::error::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchKind {
    Merge,
    /// Treated as a JSON merge: no list merge keys or `$patch` directives.
    Strategic,
    /// Server-side apply, approximated by a merge: no field ownership, nothing is removed.
    Apply,
    Json,
}

impl PatchKind {
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        match media_type {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            "application/json-patch+json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// Parses a JSON request body; the apiserver answers 400 to anything it cannot decode.
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
    })
}

/// `target` with `body` applied.
pub(crate) fn apply(kind: PatchKind, target: &Value, body: &[u8]) -> Result<Value, ApiError> {
    let mut patched = target.clone();
    match kind {
        PatchKind::Merge | PatchKind::Strategic | PatchKind::Apply => {
            let patch = parse_body(body)?;
            if !patch.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            json_patch::merge(&mut patched, &patch);
        }
        PatchKind::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut patched, &patch).map_err(|e| {
                ApiError::unprocessable(format!("the JSON patch could not be applied: {e}"))
            })?;
        }
    }
    if !patched.is_object() {
        return Err(ApiError::unprocessable(
            "the patched object is not a JSON object",
        ));
    }
    Ok(patched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_removes_nulls_and_replaces_lists() {
        let target = json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]});
        let out = apply(
            PatchKind::Merge,
            &target,
            br#"{"b": {"c": null, "e": 4}, "l": [3]}"#,
        )
        .unwrap();
        assert_eq!(out, json!({"a": 1, "b": {"d": 3, "e": 4}, "l": [3]}));
    }

    #[test]
    fn json_patch_ops_and_failures() {
        let target = json!({"a": [1]});
        let out = apply(
            PatchKind::Json,
            &target,
            br#"[{"op": "add", "path": "/a/-", "value": 2}, {"op": "add", "path": "/b", "value": "x"}]"#,
        )
        .unwrap();
        assert_eq!(out, json!({"a": [1, 2], "b": "x"}));
        let err = apply(
            PatchKind::Json,
            &target,
            br#"[{"op": "test", "path": "/a", "value": 5}]"#,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        let err = apply(PatchKind::Json, &target, b"{not json").unwrap_err();
        assert_eq!(err.code, 400);
    }
}
