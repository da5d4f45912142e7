//! `labelSelector` and `fieldSelector` query parameters.

use serde_json::Value;

use super::error::ApiError;
use super::router::Query;

/// Both selectors of a list, watch or delete-collection request.
#[derive(Clone, Debug, Default)]
pub(crate) struct Selectors {
    labels: Vec<LabelRequirement>,
    fields: Vec<FieldRequirement>,
}

impl Selectors {
    pub fn from_query(query: &Query) -> Result<Self, ApiError> {
        let labels = match query.get("labelSelector") {
            Some(s) => parse_labels(s)
                .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?,
            None => Vec::new(),
        };
        let fields = match query.get("fieldSelector") {
            Some(s) => parse_fields(s)
                .map_err(|e| ApiError::bad_request(format!("invalid field selector {s:?}: {e}")))?,
            None => Vec::new(),
        };
        Ok(Self { labels, fields })
    }

    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        self.labels.iter().all(|r| r.matches(labels))
            && self.fields.iter().all(|r| r.matches(object))
    }
}

#[derive(Clone, Debug, PartialEq)]
enum LabelRequirement {
    Equal(String, String),
    NotEqual(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl LabelRequirement {
    /// Like Kubernetes: `!=` and `notin` also match objects without the label.
    fn matches(&self, labels: &Value) -> bool {
        let get = |key: &str| labels.get(key).and_then(Value::as_str);
        match self {
            Self::Equal(k, v) => get(k) == Some(v.as_str()),
            Self::NotEqual(k, v) => get(k) != Some(v.as_str()),
            Self::In(k, vs) => get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Self::NotIn(k, vs) => get(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            Self::Exists(k) => get(k).is_some(),
            Self::DoesNotExist(k) => get(k).is_none(),
        }
    }
}

fn parse_labels(selector: &str) -> Result<Vec<LabelRequirement>, String> {
    split_top_level(selector)?
        .into_iter()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(parse_label_requirement)
        .collect()
}

/// Splits on commas outside `( … )`, so `env in (a,b),tier` is two requirements.
fn split_top_level(selector: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).ok_or("unbalanced ')'")?,
            ',' if depth == 0 => {
                parts.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced '('".into());
    }
    parts.push(&selector[start..]);
    Ok(parts)
}

fn parse_label_requirement(requirement: &str) -> Result<LabelRequirement, String> {
    if let Some(key) = requirement.strip_prefix('!') {
        return Ok(LabelRequirement::DoesNotExist(label_key(key.trim())?));
    }
    let key_end = requirement
        .find(|c: char| c.is_whitespace() || matches!(c, '=' | '!' | '('))
        .unwrap_or(requirement.len());
    let key = label_key(&requirement[..key_end])?;
    let rest = requirement[key_end..].trim_start();
    if rest.is_empty() {
        return Ok(LabelRequirement::Exists(key));
    }
    if let Some(value) = rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')) {
        return Ok(LabelRequirement::Equal(key, label_value(value)?));
    }
    if let Some(value) = rest.strip_prefix("!=") {
        return Ok(LabelRequirement::NotEqual(key, label_value(value)?));
    }
    if let Some(set) = rest.strip_prefix("notin") {
        return Ok(LabelRequirement::NotIn(key, value_set(set)?));
    }
    if let Some(set) = rest.strip_prefix("in") {
        return Ok(LabelRequirement::In(key, value_set(set)?));
    }
    Err(format!("{requirement:?}: unknown operator"))
}

fn label_key(key: &str) -> Result<String, String> {
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if valid {
        Ok(key.to_string())
    } else {
        Err(format!("{key:?}: invalid label key"))
    }
}

fn label_value(value: &str) -> Result<String, String> {
    let value = value.trim();
    let valid = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(value.to_string())
    } else {
        Err(format!("{value:?}: invalid label value"))
    }
}

/// ` (a, b)` → `[a, b]`.
fn value_set(set: &str) -> Result<Vec<String>, String> {
    let inner = set
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("{set:?}: expected a parenthesised set of values"))?;
    inner.split(',').map(label_value).collect()
}

#[derive(Clone, Debug, PartialEq)]
struct FieldRequirement {
    path: String,
    value: String,
    equal: bool,
}

impl FieldRequirement {
    /// A missing field compares as the empty string, as for `spec.nodeName=` on unscheduled
    /// pods.
    fn matches(&self, object: &Value) -> bool {
        let field = self
            .path
            .split('.')
            .try_fold(object, |v, segment| v.get(segment));
        let actual = match field {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        (actual == self.value) == self.equal
    }
}

fn parse_fields(selector: &str) -> Result<Vec<FieldRequirement>, String> {
    selector
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| {
            let (path, value, equal) = if let Some((p, v)) = r.split_once("!=") {
                (p, v, false)
            } else if let Some((p, v)) = r.split_once("==") {
                (p, v, true)
            } else if let Some((p, v)) = r.split_once('=') {
                (p, v, true)
            } else {
                return Err(format!(
                    "{r:?}: expected field=value, field==value or field!=value"
                ));
            };
            Ok(FieldRequirement {
                path: path.trim().to_string(),
                value: value.trim().to_string(),
                equal,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(selector: &str, labels: Value) -> bool {
        let query = Query::parse(Some(&format!("labelSelector={selector}")));
        Selectors::from_query(&query)
            .expect("valid selector")
            .matches(&json!({"metadata": {"labels": labels}}))
    }

    #[test]
    fn label_operators() {
        let obj = json!({"env": "prod", "tier": "web"});
        assert!(labels("env=prod", obj.clone()));
        assert!(labels("env==prod,tier=web", obj.clone()));
        assert!(!labels("env!=prod", obj.clone()));
        assert!(labels("missing!=x", obj.clone()));
        assert!(labels("env+in+(prod,dev)", obj.clone()));
        assert!(labels("env notin (dev),tier", obj.clone()));
        assert!(labels("!missing", obj.clone()));
        assert!(!labels("env in (dev, qa)", obj));
    }

    #[test]
    fn malformed_selectors_are_rejected() {
        for bad in ["env in (a", "env >< x", "=x", "env=a b"] {
            let query = Query::parse(Some(&format!("labelSelector={bad}")));
            assert!(Selectors::from_query(&query).is_err(), "{bad}");
        }
        let query = Query::parse(Some("fieldSelector=metadata.name"));
        assert!(Selectors::from_query(&query).is_err());
    }

    #[test]
    fn field_selectors() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}});
        let sel =
            |s: &str| Selectors::from_query(&Query::parse(Some(&format!("fieldSelector={s}"))));
        assert!(sel("metadata.name=p").unwrap().matches(&pod));
        assert!(
            sel("spec.nodeName!=n2,metadata.name==p")
                .unwrap()
                .matches(&pod)
        );
        assert!(!sel("status.phase=Running").unwrap().matches(&pod));
        assert!(sel("status.phase=").unwrap().matches(&pod));
    }
}
