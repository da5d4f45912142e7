//! Taints and tolerations, matched as `v1.Toleration.ToleratesTaint` does.

use serde_json::{Value, json};

pub(super) const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub(super) const NOT_READY: &str = "node.kubernetes.io/not-ready";

pub(super) fn str_of<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj[field].as_str().unwrap_or_default()
}

/// An empty effect or key in the toleration matches any; `Exists` ignores the value.
pub(super) fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let (effect, key) = (str_of(toleration, "effect"), str_of(toleration, "key"));
    if !effect.is_empty() && effect != str_of(taint, "effect") {
        return false;
    }
    if !key.is_empty() && key != str_of(taint, "key") {
        return false;
    }
    match str_of(toleration, "operator") {
        "" | "Equal" => str_of(toleration, "value") == str_of(taint, "value"),
        "Exists" => true,
        _ => false,
    }
}

pub(super) fn tolerations(pod: &Value) -> &[Value] {
    pod["spec"]["tolerations"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

pub(super) fn node_taints(node: &Value) -> &[Value] {
    node["spec"]["taints"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The taints of `effect` that none of `tolerations` tolerates.
pub(super) fn untolerated<'a>(
    taints: &'a [Value],
    tolerations: &[Value],
    effects: &[&str],
) -> Vec<&'a Value> {
    taints
        .iter()
        .filter(|t| effects.contains(&str_of(t, "effect")))
        .filter(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
        .collect()
}

/// What the DefaultTolerationSeconds admission plugin adds: `not-ready` and `unreachable`
/// NoExecute tolerations for `seconds`, each unless the pod already tolerates that taint.
pub(super) fn default_tolerations(pod: &Value, seconds: u32) -> Vec<Value> {
    let own = tolerations(pod);
    [NOT_READY, UNREACHABLE]
        .into_iter()
        .filter(|key| {
            let taint = json!({"key": key, "effect": "NoExecute"});
            !own.iter().any(|t| tolerates(t, &taint))
        })
        .map(|key| {
            json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                   "tolerationSeconds": seconds})
        })
        .collect()
}
