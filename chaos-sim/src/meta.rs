//! Reading and writing `metadata` of untyped objects, and name validation.

use serde_json::{Map, Value};

use super::error::Cause;

/// `metadata`, created when missing (callers have already checked `obj` is a JSON object).
pub(crate) fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let Value::Object(map) = obj else {
        unreachable!("made an object above")
    };
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    let Value::Object(meta) = meta else {
        unreachable!("made an object above")
    };
    meta
}

pub(crate) fn str_field<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or_default()
}

pub(crate) fn name(obj: &Value) -> &str {
    str_field(obj, "name")
}

pub(crate) fn namespace(obj: &Value) -> &str {
    str_field(obj, "namespace")
}

pub(crate) fn resource_version(obj: &Value) -> &str {
    str_field(obj, "resourceVersion")
}

pub(crate) fn set(obj: &mut Value, field: &str, value: impl Into<Value>) {
    metadata_mut(obj).insert(field.to_string(), value.into());
}

pub(crate) fn remove(obj: &mut Value, field: &str) {
    metadata_mut(obj).remove(field);
}

pub(crate) fn finalizers_pending(obj: &Value) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty())
}

pub(crate) fn is_deleting(obj: &Value) -> bool {
    !obj["metadata"]["deletionTimestamp"].is_null()
}

/// An object as served at one group version: `apiVersion` is the requested one (versions share
/// storage), and `PartialObjectMetadata` when the client asked for metadata only.
pub(crate) fn as_served(mut obj: Value, api_version: &str, metadata_only: bool) -> Value {
    if metadata_only {
        return serde_json::json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadata",
            "metadata": obj["metadata"],
        });
    }
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), api_version.into());
    }
    obj
}

/// RFC 3339 with second precision, like `metav1.Time`.
pub(crate) fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Which DNS rule a resource's names follow.
#[derive(Clone, Copy, Debug)]
pub(crate) enum NameRule {
    /// RFC 1123 subdomain: most resources.
    Subdomain,
    /// RFC 1123 label: namespaces.
    Label,
    /// RFC 1035 label: services.
    Dns1035,
}

/// The `Invalid` causes for `name`, empty when it is valid.
pub(crate) fn validate_name(name: &str, rule: NameRule) -> Vec<Cause> {
    let field = "metadata.name".to_string();
    if name.is_empty() {
        return vec![Cause {
            reason: "FieldValueRequired",
            field,
            message: "Required value: name or generateName is required".into(),
        }];
    }
    let (max, ok, explanation) = match rule {
        NameRule::Subdomain => (
            253,
            name.split('.').all(is_label),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
             '-' or '.', and must start and end with an alphanumeric character (e.g. \
             'example.com', regex used for validation is \
             '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        NameRule::Label => (
            63,
            is_label(name),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \
             '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or \
             '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
        NameRule::Dns1035 => (
            63,
            is_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase()),
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start \
             with an alphabetic character, and end with an alphanumeric character (e.g. \
             'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        ),
    };
    let mut causes = Vec::new();
    if name.len() > max {
        causes.push(Cause {
            reason: "FieldValueInvalid",
            field: field.clone(),
            message: format!("Invalid value: {name:?}: must be no more than {max} characters"),
        });
    }
    if !ok {
        causes.push(Cause {
            reason: "FieldValueInvalid",
            field,
            message: format!("Invalid value: {name:?}: {explanation}"),
        });
    }
    causes
}

fn is_label(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.chars().all(|c| alnum(c) || c == '-')
        && s.starts_with(alnum)
        && s.ends_with(alnum)
}

/// A value from a counter, scrambled (splitmix64) so ids and name suffixes look random but are
/// reproducible run to run.
pub(crate) fn scramble(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A version-4-shaped UUID.
pub(crate) fn uid(n: u64) -> String {
    let (a, b) = (scramble(n), scramble(n ^ 0xA5A5_A5A5));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFF,
        b >> 52,
        b & 0xFFFF_FFFF_FFFF
    )
}

/// The five characters `generateName` appends, from the same alphabet as the apiserver's.
pub(crate) fn name_suffix(n: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut x = scramble(n);
    (0..5)
        .map(|_| {
            let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
            x /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("web-1.example", NameRule::Subdomain).is_empty());
        assert!(!validate_name("Web", NameRule::Subdomain).is_empty());
        assert!(!validate_name("a.b", NameRule::Label).is_empty());
        assert!(!validate_name("1svc", NameRule::Dns1035).is_empty());
        assert!(!validate_name(&"a".repeat(64), NameRule::Label).is_empty());
        assert_eq!(
            validate_name("", NameRule::Subdomain)[0].reason,
            "FieldValueRequired"
        );
    }

    #[test]
    fn ids_are_distinct() {
        assert_ne!(uid(1), uid(2));
        assert_eq!(uid(1).len(), 36);
        assert_ne!(name_suffix(1), name_suffix(2));
    }
}
