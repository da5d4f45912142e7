//! Request paths and query strings, as kube-apiserver lays them out.

use std::collections::HashMap;

use percent_encoding::percent_decode_str;

/// What a request path names.
#[derive(Debug, PartialEq)]
pub(crate) enum Route {
    /// `/version`
    Version,
    /// `/healthz`, `/readyz`, `/livez` (and their `/{check}` sub-paths): always `ok`.
    Health,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1`, `/apis/{group}/{version}`
    ResourceList { group: String, version: String },
    /// Anything under a group version.
    Resource(ResourcePath),
}

#[derive(Debug, PartialEq)]
pub(crate) struct ResourcePath {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

pub(crate) fn parse_path(path: &str) -> Option<Route> {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| decode(s, false))
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segments.as_slice() {
        ["version"] => Some(Route::Version),
        ["healthz" | "readyz" | "livez", ..] => Some(Route::Health),
        ["api"] => Some(Route::CoreVersions),
        ["apis"] => Some(Route::Groups),
        ["apis", group] => Some(Route::Group(group.to_string())),
        ["api", version] => Some(Route::ResourceList {
            group: String::new(),
            version: version.to_string(),
        }),
        ["apis", group, version] => Some(Route::ResourceList {
            group: group.to_string(),
            version: version.to_string(),
        }),
        ["api", version, rest @ ..] => resource_path("", version, rest),
        ["apis", group, version, rest @ ..] => resource_path(group, version, rest),
        _ => None,
    }
}

/// `[namespaces/{ns}/]{plural}[/{name}[/{subresource}]]`. `namespaces/{name}/status` is the
/// namespace's own subresource, not a resource called `status` inside it.
fn resource_path(group: &str, version: &str, rest: &[&str]) -> Option<Route> {
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if !(tail.is_empty() && is_namespace_subresource(plural)) =>
        {
            (Some(ns.to_string()), [&[*plural][..], tail].concat())
        }
        _ => (None, rest.to_vec()),
    };
    let (plural, name, subresource) = match rest.as_slice() {
        [plural] => (plural, None, None),
        [plural, name] => (plural, Some(name.to_string()), None),
        [plural, name, sub] => (plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return None,
    };
    Some(Route::Resource(ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        plural: plural.to_string(),
        namespace,
        name,
        subresource,
    }))
}

fn is_namespace_subresource(segment: &str) -> bool {
    matches!(segment, "status" | "finalize")
}

/// Decoded query parameters; the last occurrence of a key wins.
#[derive(Debug, Default)]
pub(crate) struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(query: Option<&str>) -> Self {
        let pairs = query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(key, true), decode(value, true))
            });
        Self(pairs.collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// `true` and `1` both turn a boolean parameter on, as Go's `strconv.ParseBool` does.
    pub fn flag(&self, key: &str) -> bool {
        matches!(
            self.get(key),
            Some("true" | "1" | "True" | "TRUE" | "t" | "T")
        )
    }
}

/// Percent-decoding; form encoding (queries) also turns `+` into a space (a literal `+` arrives
/// as `%2B`, so spaces are put in before decoding). Bad escapes are kept as they are.
fn decode(s: &str, plus_as_space: bool) -> String {
    let spaced;
    let s = match plus_as_space {
        true => {
            spaced = s.replace('+', " ");
            &spaced
        }
        false => s,
    };
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(path: &str) -> ResourcePath {
        match parse_path(path) {
            Some(Route::Resource(p)) => p,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn namespaced_and_cluster_paths() {
        let p = resource("/api/v1/namespaces/ns1/pods/p1/status");
        assert_eq!(p.namespace.as_deref(), Some("ns1"));
        assert_eq!(p.plural, "pods");
        assert_eq!(p.name.as_deref(), Some("p1"));
        assert_eq!(p.subresource.as_deref(), Some("status"));

        let p = resource("/api/v1/namespaces/ns1/status");
        assert_eq!((p.plural.as_str(), p.namespace), ("namespaces", None));
        assert_eq!(p.subresource.as_deref(), Some("status"));

        let p = resource("/apis/apps/v1/deployments");
        assert_eq!(
            (p.group.as_str(), p.plural.as_str()),
            ("apps", "deployments")
        );
        assert_eq!(p.namespace, None);

        let p = resource("/api/v1/namespaces/default");
        assert_eq!(p.plural, "namespaces");
        assert_eq!(p.name.as_deref(), Some("default"));
    }

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some("labelSelector=env+in+%28a%2Cb%29&watch=1"));
        assert_eq!(q.get("labelSelector"), Some("env in (a,b)"));
        assert!(q.flag("watch"));
        assert!(!q.flag("missing"));
    }

    #[test]
    fn plus_is_a_space_in_queries_only() {
        let q = Query::parse(Some("fieldSelector=a%2Bb+c&bad=%zz%4"));
        assert_eq!(q.get("fieldSelector"), Some("a+b c"));
        assert_eq!(q.get("bad"), Some("%zz%4"), "bad escapes are kept");
        let p = resource("/api/v1/namespaces/a+b/pods/p%2D1");
        assert_eq!(p.namespace.as_deref(), Some("a+b"));
        assert_eq!(p.name.as_deref(), Some("p-1"));
    }
}
