//! From the arguments as written to a validated [`Config`]: keys resolved, values type-checked,
//! versions parsed, and the topology of every `k8s` entry checked against the version-skew policy.
//!
//! Version parsing and the skew rules belong to `chaos-topology` (the runtime applies the same
//! ones); this module only points their errors at the tokens that caused them.

use std::fmt::Display;
use std::time::Duration;

use chaos_topology::{
    DEFAULT_K8S, DEFAULT_MASTERS, DEFAULT_WORKERS, MAX_NODES, Source, TopologyError, TopologySpec,
    Version,
};
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::{Error, Expr, ExprArray, ExprLit, Ident, Lit, LitStr, Path, UnOp};

use crate::errors::Errors;
use crate::parse::{RawArg, RawValue, parse_args};

/// What `#[chaos_test(...)]` asks for: valid, normalized, defaults filled in.
#[derive(Debug, PartialEq)]
pub(crate) struct Config {
    pub masters: u32,
    pub workers: u32,
    /// One entry, or several (all different) for a version matrix.
    pub k8s: Vec<Version>,
    pub master_versions: Vec<Version>,
    pub worker_versions: Vec<Version>,
    pub timeout: Option<Duration>,
    /// `Some("")` for a bare `ignore`.
    pub ignore: Option<String>,
    /// `None`: the harness's `CHAOS_RETRIES`.
    pub retries: Option<u32>,
}

/// The most retries `retries = N` accepts (and the runtime's `CHAOS_RETRIES`, in
/// `chaos-runtime/src/harness/settings.rs`, which says the same): each attempt may run for the
/// whole timeout, and a test that needs more than ten tries is not flaky but broken.
pub(crate) const MAX_RETRIES: u32 = 10;

impl Config {
    pub(crate) fn parse(attr: TokenStream) -> syn::Result<Config> {
        Args::from_raw(parse_args(attr)?)?.validate()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Masters,
    Workers,
    K8s,
    MasterVersions,
    WorkerVersions,
    Timeout,
    Ignore,
    Retries,
}

impl Key {
    const ALL: [Key; 8] = [
        Key::Masters,
        Key::Workers,
        Key::K8s,
        Key::MasterVersions,
        Key::WorkerVersions,
        Key::Timeout,
        Key::Ignore,
        Key::Retries,
    ];

    fn name(self) -> &'static str {
        match self {
            Key::Masters => "masters",
            Key::Workers => "workers",
            Key::K8s => "k8s",
            Key::MasterVersions => "master_versions",
            Key::WorkerVersions => "worker_versions",
            Key::Timeout => "timeout",
            Key::Ignore => "ignore",
            Key::Retries => "retries",
        }
    }

    /// The key with a typical value, for messages that show how to write it.
    fn example(self) -> &'static str {
        match self {
            Key::Masters => "masters = 3",
            Key::Workers => "workers = 3",
            Key::K8s => "k8s = \"1.29\"",
            Key::MasterVersions => "master_versions = [\"1.29\"]",
            Key::WorkerVersions => "worker_versions = [\"1.28\"]",
            Key::Timeout => "timeout = \"10m\"",
            Key::Ignore => "ignore = \"reason\"",
            Key::Retries => "retries = 2",
        }
    }

    fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|key| key.name() == name)
    }
}

/// A value with the tokens it was written as, so that an error can point at them.
struct Written<T> {
    value: T,
    tokens: TokenStream,
}

impl<T> Written<T> {
    fn error(&self, message: impl Display) -> Error {
        Error::new_spanned(&self.tokens, message)
    }
}

/// A version list, or the `k8s` value (a single string is a list of one).
type Versions = Written<Vec<Written<Version>>>;

fn versions_of(list: &Option<Versions>) -> Vec<Version> {
    list.iter()
        .flat_map(|list| list.value.iter().map(|v| v.value))
        .collect()
}

/// The arguments with their types checked, each still knowing where it was written.
#[derive(Default)]
struct Args {
    masters: Option<Written<u32>>,
    workers: Option<Written<u32>>,
    k8s: Option<Versions>,
    master_versions: Option<Versions>,
    worker_versions: Option<Versions>,
    timeout: Option<Duration>,
    ignore: Option<String>,
    retries: Option<u32>,
}

impl Args {
    /// Type-checks each argument in the order written, so errors come in source order.
    fn from_raw(raw: Vec<RawArg>) -> syn::Result<Args> {
        let mut errors = Errors::default();
        let mut args = Args::default();
        let mut seen = Vec::new();
        for RawArg { key, value } in raw {
            let Some((key, ident)) = errors.take(resolve_key(&key, &seen)) else {
                continue;
            };
            seen.push(key);
            let result = args.set(key, &ident, value);
            errors.take(result);
        }
        errors.finish()?;
        Ok(args)
    }

    fn set(&mut self, key: Key, ident: &Ident, value: RawValue) -> syn::Result<()> {
        match key {
            Key::Masters => self.masters = Some(masters(given(key, ident, value)?)?),
            Key::Workers => self.workers = Some(node_count(key, &given(key, ident, value)?)?),
            Key::K8s => self.k8s = Some(k8s_matrix(given(key, ident, value)?)?),
            Key::MasterVersions => {
                self.master_versions = Some(version_list(key, given(key, ident, value)?)?);
            }
            Key::WorkerVersions => {
                self.worker_versions = Some(version_list(key, given(key, ident, value)?)?);
            }
            Key::Timeout => self.timeout = Some(timeout(given(key, ident, value)?)?),
            Key::Ignore => self.ignore = Some(ignore_reason(ident, value)?),
            Key::Retries => self.retries = Some(retries(&given(key, ident, value)?)?),
        }
        Ok(())
    }

    /// Checks the topology of every `k8s` entry; defaults fill in what was not written.
    fn validate(self) -> syn::Result<Config> {
        let masters = self.masters.as_ref().map_or(DEFAULT_MASTERS, |m| m.value);
        let workers = self.workers.as_ref().map_or(DEFAULT_WORKERS, |w| w.value);
        let k8s = match &self.k8s {
            Some(matrix) => matrix.value.iter().map(|v| v.value).collect(),
            None => vec![default_k8s()],
        };
        let master_versions = versions_of(&self.master_versions);
        let worker_versions = versions_of(&self.worker_versions);

        let mut errors = Errors::default();
        if let (0, Some(list)) = (workers, &self.worker_versions) {
            errors.push(list.error(
                "`worker_versions` is given but `workers = 0`: remove `worker_versions` or add \
                 workers",
            ));
        }
        for (entry, &version) in k8s.iter().enumerate() {
            let spec = TopologySpec {
                masters,
                workers,
                k8s: version,
                master_versions: master_versions.clone(),
                worker_versions: worker_versions.clone(),
            };
            if let Err(error) = spec.build() {
                errors.push(self.topology_error(&error, entry));
            }
        }
        errors.finish()?;

        Ok(Config {
            masters,
            workers,
            k8s,
            master_versions,
            worker_versions,
            timeout: self.timeout,
            ignore: self.ignore,
            retries: self.retries,
        })
    }

    /// Points a topology error at the written value at fault. `entry` is the `k8s` entry whose
    /// topology failed; in a matrix, unless the error points at that entry, it says which one.
    fn topology_error(&self, error: &TopologyError, entry: usize) -> Error {
        let (tokens, blames_k8s) = match error {
            TopologyError::NoControlPlane => (self.masters.as_ref().map(|m| &m.tokens), false),
            // Each count is within the bound on its own (`node_count`), so both were written and
            // their sum is at fault: shown at `workers`.
            TopologyError::TooManyNodes { .. } => (
                self.workers
                    .as_ref()
                    .or(self.masters.as_ref())
                    .map(|w| &w.tokens),
                false,
            ),
            TopologyError::VersionCount { key, .. } => {
                let list = match *key {
                    "master_versions" => &self.master_versions,
                    _ => &self.worker_versions,
                };
                (list.as_ref().map(|l| &l.tokens), false)
            }
            TopologyError::Skew(skew) => match skew.source() {
                Source::K8s => (at(&self.k8s, entry), true),
                Source::MasterVersions(i) => (at(&self.master_versions, i), false),
                Source::WorkerVersions(i) => (at(&self.worker_versions, i), false),
            },
        };
        let message = match &self.k8s {
            Some(matrix) if matrix.value.len() > 1 && !blames_k8s => {
                let version = matrix.value[entry].value;
                format!("with `k8s = \"{version}\"` of the matrix: {error}")
            }
            _ => error.to_string(),
        };
        match tokens {
            Some(tokens) => Error::new_spanned(tokens, message),
            // Only a defaulted `k8s` was not written anywhere: say what it defaulted to.
            None => Error::new(
                Span::call_site(),
                format!("{message} (`k8s` is not given and defaults to \"{DEFAULT_K8S}\")"),
            ),
        }
    }
}

/// The tokens of entry `i` of a written list.
fn at(list: &Option<Versions>, i: usize) -> Option<&TokenStream> {
    list.as_ref().map(|list| &list.value[i].tokens)
}

fn default_k8s() -> Version {
    DEFAULT_K8S
        .parse()
        .expect("chaos_topology::DEFAULT_K8S is a valid version")
}

/// The key an argument names. Unknown and repeated keys are errors pointing at the key.
fn resolve_key(path: &Path, seen: &[Key]) -> syn::Result<(Key, Ident)> {
    let Some(ident) = path.get_ident() else {
        let written = path.to_token_stream().to_string().replace(' ', "");
        return Err(Error::new_spanned(path, unknown_key(&written)));
    };
    let name = ident.unraw().to_string();
    let Some(key) = Key::from_name(&name) else {
        return Err(Error::new_spanned(ident, unknown_key(&name)));
    };
    if seen.contains(&key) {
        return Err(Error::new_spanned(
            ident,
            format!("duplicate key `{name}`: it is already given earlier; remove one of them"),
        ));
    }
    Ok((key, ident.clone()))
}

fn unknown_key(name: &str) -> String {
    match closest_key(name) {
        Some(key) => format!("unknown key `{name}`: did you mean `{}`?", key.name()),
        None => {
            let keys: Vec<&str> = Key::ALL.iter().map(|k| k.name()).collect();
            format!("unknown key `{name}`; the keys are: {}", keys.join(", "))
        }
    }
}

/// The key a typo most likely meant: the nearest by edit distance when it is near enough to be a
/// typo, or one that the name extends (`timeout_secs` → `timeout`).
fn closest_key(name: &str) -> Option<Key> {
    let name = name.to_lowercase();
    let nearest = Key::ALL
        .into_iter()
        .map(|key| (strsim::levenshtein(&name, key.name()), key))
        .filter(|(distance, key)| *distance <= (key.name().len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, key)| key);
    nearest.or_else(|| {
        Key::ALL
            .into_iter()
            .find(|key| name.starts_with(&format!("{}_", key.name())))
    })
}

/// The expression after `key =`; a missing one is an error that shows how to write it.
fn given(key: Key, ident: &Ident, value: RawValue) -> syn::Result<Expr> {
    match value {
        RawValue::Given(expr) => Ok(expr),
        RawValue::Absent => Err(Error::new_spanned(
            ident,
            format!("`{}` needs a value: write `{}`", key.name(), key.example()),
        )),
        RawValue::Missing(eq) => Err(Error::new_spanned(
            quote!(#ident #eq),
            format!(
                "missing value after `{} =`: write `{}`",
                key.name(),
                key.example()
            ),
        )),
    }
}

fn masters(expr: Expr) -> syn::Result<Written<u32>> {
    let masters = node_count(Key::Masters, &expr)?;
    if masters.value == 0 {
        return Err(masters.error(TopologyError::NoControlPlane));
    }
    Ok(masters)
}

/// `masters` or `workers`: an integer literal, at most [`MAX_NODES`]. A larger count is refused
/// here, at its literal, before anything allocates a node per count.
fn node_count(key: Key, expr: &Expr) -> syn::Result<Written<u32>> {
    let Expr::Lit(ExprLit {
        lit: Lit::Int(int), ..
    }) = expr
    else {
        return Err(wrong_type(key, expr, "a whole number of nodes"));
    };
    let count = int
        .base10_parse::<u64>()
        .ok()
        .filter(|count| *count <= u64::from(MAX_NODES))
        .ok_or_else(|| {
            Error::new_spanned(int, too_many_nodes(&format!("{} = {int}", key.name())))
        })?;
    Ok(Written {
        value: u32::try_from(count).expect("at most MAX_NODES"),
        tokens: int.to_token_stream(),
    })
}

/// Why `what` (a count, or a version list that long) is refused: the bound and where it comes
/// from, as `chaos_topology::MAX_NODES` cites it.
fn too_many_nodes(what: &str) -> String {
    format!(
        "`{what}` is more nodes than Kubernetes supports in one cluster, {MAX_NODES} \
         (kubernetes.io/docs/setup/best-practices/cluster-large): use fewer"
    )
}

/// `k8s`: one version string, or a list of them for a version matrix.
fn k8s_matrix(expr: Expr) -> syn::Result<Versions> {
    match &expr {
        Expr::Array(list) => {
            let matrix = versions_in(Key::K8s, list)?;
            reject_duplicates(&matrix)?;
            Ok(matrix)
        }
        _ if string_literal(&expr).is_some() => {
            let version = version(&expr)?;
            Ok(Written {
                tokens: version.tokens.clone(),
                value: vec![version],
            })
        }
        _ => Err(wrong_type(
            Key::K8s,
            &expr,
            "a version string or a list of them",
        )),
    }
}

/// `master_versions` or `worker_versions`: a list of version strings.
fn version_list(key: Key, expr: Expr) -> syn::Result<Versions> {
    match &expr {
        Expr::Array(list) => versions_in(key, list),
        _ => Err(wrong_type(key, &expr, "a list of versions")),
    }
}

fn versions_in(key: Key, list: &ExprArray) -> syn::Result<Versions> {
    if list.elems.is_empty() {
        let message = match key {
            Key::K8s => "`k8s = []` names no version: give at least one, like `k8s = [\"1.29\", \
                         \"1.30\"]`, or remove `k8s` for the default"
                .to_owned(),
            _ => format!(
                "`{}` is empty: give one version for all nodes, like `{}`, or remove the key",
                key.name(),
                key.example()
            ),
        };
        return Err(Error::new_spanned(list, message));
    }
    if key != Key::K8s && list.elems.len() > MAX_NODES as usize {
        let what = format!("{} = [..{} entries]", key.name(), list.elems.len());
        return Err(Error::new_spanned(list, too_many_nodes(&what)));
    }
    let mut errors = Errors::default();
    let versions = list
        .elems
        .iter()
        .filter_map(|expr| errors.take(version(expr)))
        .collect();
    errors.finish()?;
    Ok(Written {
        value: versions,
        tokens: list.to_token_stream(),
    })
}

/// One version: a string literal that `Version` parses.
fn version(expr: &Expr) -> syn::Result<Written<Version>> {
    let Some(lit) = string_literal(expr) else {
        return Err(Error::new_spanned(
            expr,
            format!(
                "a version is a string, not {}: write {}",
                describe(expr),
                quoted_version(expr)
            ),
        ));
    };
    let version = lit
        .value()
        .parse::<Version>()
        .map_err(|error| Error::new(lit.span(), error))?;
    Ok(Written {
        value: version,
        tokens: lit.to_token_stream(),
    })
}

/// Each `k8s` entry is its own test, so the same version twice would register one test twice.
fn reject_duplicates(matrix: &Versions) -> syn::Result<()> {
    let mut errors = Errors::default();
    for (i, entry) in matrix.value.iter().enumerate() {
        if matrix.value[..i]
            .iter()
            .any(|earlier| earlier.value == entry.value)
        {
            errors.push(entry.error(format!(
                "`{}` is already in the `k8s` matrix: remove this entry",
                entry.value
            )));
        }
    }
    errors.finish()
}

/// `timeout`: a duration string such as "90s" or "10m", in whole milliseconds.
fn timeout(expr: Expr) -> syn::Result<Duration> {
    let Some(lit) = string_literal(&expr) else {
        return Err(wrong_type(Key::Timeout, &expr, "a duration string"));
    };
    let duration = humantime::parse_duration(&lit.value()).map_err(|error| {
        Error::new(
            lit.span(),
            format!(
                "`timeout = {}` is not a duration ({error}): write it like \"90s\" or \"10m\"",
                lit.token()
            ),
        )
    })?;
    let problem = if duration.is_zero() {
        Some("a zero `timeout` would fail the test before it starts: give a duration like \"10m\"")
    } else if duration.subsec_nanos() % 1_000_000 != 0 {
        Some("`timeout` is counted in whole milliseconds: round it, like \"1500ms\"")
    } else if u64::try_from(duration.as_millis()).is_err() {
        Some("`timeout` is too long: give a duration like \"10m\"")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Error::new(lit.span(), problem)),
        None => Ok(duration),
    }
}

/// `retries`: how many times a failed test runs again, an integer literal from 0 to
/// [`MAX_RETRIES`]. `0` is meaningful: the test is never retried, whatever `CHAOS_RETRIES` says.
fn retries(expr: &Expr) -> syn::Result<u32> {
    let Expr::Lit(ExprLit {
        lit: Lit::Int(int), ..
    }) = expr
    else {
        return Err(wrong_type(Key::Retries, expr, "a whole number of retries"));
    };
    int.base10_parse::<u64>()
        .ok()
        .filter(|retries| *retries <= u64::from(MAX_RETRIES))
        .map(|retries| u32::try_from(retries).expect("at most MAX_RETRIES"))
        .ok_or_else(|| {
            Error::new_spanned(
                int,
                format!(
                    "`retries = {int}` is more than {MAX_RETRIES}: each attempt may run for the \
                     whole timeout, and a test that needs more tries is broken, not flaky; give \
                     at most {MAX_RETRIES}"
                ),
            )
        })
}

/// `ignore` alone, or `ignore = "reason"`.
fn ignore_reason(ident: &Ident, value: RawValue) -> syn::Result<String> {
    let fix = "write `ignore = \"reason\"`, or `ignore` alone";
    match value {
        RawValue::Absent => Ok(String::new()),
        RawValue::Missing(eq) => Err(Error::new_spanned(
            quote!(#ident #eq),
            format!("missing value after `ignore =`: {fix}"),
        )),
        RawValue::Given(expr) => match string_literal(&expr) {
            Some(reason) => Ok(reason.value()),
            None => Err(Error::new_spanned(
                &expr,
                format!(
                    "`ignore` takes a reason string, not {}: {fix}",
                    describe(&expr)
                ),
            )),
        },
    }
}

fn string_literal(expr: &Expr) -> Option<&LitStr> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Some(lit),
        _ => None,
    }
}

/// A value of the wrong kind: what the key takes, what it got, and how to write it instead.
fn wrong_type(key: Key, expr: &Expr, expected: &str) -> Error {
    Error::new_spanned(
        expr,
        format!(
            "`{}` takes {expected}, not {}: write `{}`",
            key.name(),
            describe(expr),
            rewritten(key, expr)
        ),
    )
}

/// `key = value` with the value rewritten to the right kind when that is plain (`masters = "3"`
/// → `masters = 3`, `k8s = 1.29` → `k8s = "1.29"`), else the key's example.
fn rewritten(key: Key, expr: &Expr) -> String {
    let name = key.name();
    let text = match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => s.value(),
        Expr::Lit(ExprLit {
            lit: Lit::Int(_) | Lit::Float(_),
            ..
        }) => expr.to_token_stream().to_string(),
        _ => return key.example().to_owned(),
    };
    match key {
        Key::Masters | Key::Workers | Key::Retries if text.parse::<u32>().is_ok() => {
            format!("{name} = {text}")
        }
        Key::K8s if text.parse::<Version>().is_ok() => format!("{name} = \"{text}\""),
        Key::MasterVersions | Key::WorkerVersions if text.parse::<Version>().is_ok() => {
            format!("{name} = [\"{text}\"]")
        }
        Key::Timeout if text.parse::<u64>().is_ok() => format!("{name} = \"{text}s\""),
        _ => key.example().to_owned(),
    }
}

/// `"1.28"` for a version written as the number `1.28`, else an example.
fn quoted_version(expr: &Expr) -> String {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(_) | Lit::Float(_),
            ..
        }) => {
            format!("\"{}\"", expr.to_token_stream())
        }
        _ => "\"1.29\"".to_owned(),
    }
}

/// What kind of value an expression is, in words.
fn describe(expr: &Expr) -> &'static str {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => match lit {
            Lit::Str(_) => "a string",
            Lit::Int(_) => "an integer",
            Lit::Float(_) => "a number with a fraction",
            Lit::Bool(_) => "a boolean",
            _ => "a literal of another kind",
        },
        Expr::Unary(unary) if matches!(unary.op, UnOp::Neg(_)) => "a negative number",
        Expr::Array(_) => "a list",
        Expr::Path(_) => "a name (values must be literals)",
        _ => "an expression (values must be literals)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(attr: TokenStream) -> Config {
        Config::parse(attr).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every message of a failed parse.
    fn errors(attr: TokenStream) -> Vec<String> {
        match Config::parse(attr) {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(errors) => errors.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_come_from_chaos_topology() {
        let c = config(quote!());
        assert_eq!(c.masters, DEFAULT_MASTERS);
        assert_eq!(c.workers, DEFAULT_WORKERS);
        assert_eq!(c.k8s, [v(DEFAULT_K8S)]);
        assert!(c.master_versions.is_empty() && c.worker_versions.is_empty());
        assert_eq!((c.timeout, c.ignore, c.retries), (None, None, None));
    }

    #[test]
    fn reads_every_key() {
        let c = config(quote!(
            masters = 2,
            workers = 3,
            k8s = "v1.29.14",
            master_versions = ["1.29", "1.28"],
            worker_versions = ["1.28"],
            timeout = "1m 30s",
            ignore = "flaky on CI",
            retries = 2,
        ));
        assert_eq!((c.masters, c.workers), (2, 3));
        assert_eq!(c.k8s, [v("1.29.14")]);
        assert_eq!(c.master_versions, [v("1.29"), v("1.28")]);
        assert_eq!(c.worker_versions, [v("1.28")]);
        assert_eq!(c.timeout, Some(Duration::from_secs(90)));
        assert_eq!(c.ignore.as_deref(), Some("flaky on CI"));
        assert_eq!(c.retries, Some(2));
    }

    #[test]
    fn retries_are_a_bounded_whole_number_and_zero_is_meaningful() {
        assert_eq!(config(quote!(retries = 0)).retries, Some(0));
        assert_eq!(config(quote!(retries = 10)).retries, Some(MAX_RETRIES));
        for many in [
            quote!(retries = 11),
            quote!(retries = 99999999999999999999999),
        ] {
            let e = errors(many);
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(e[0].contains("is more than 10"), "{e:?}");
            assert!(e[0].ends_with("give at most 10"), "{e:?}");
        }
        let e = errors(quote!(retries = "2"));
        assert_eq!(
            e,
            ["`retries` takes a whole number of retries, not a string: write `retries = 2`"]
        );
        let e = errors(quote!(retries = -1));
        assert!(
            e[0].starts_with("`retries` takes a whole number of retries, not a negative number"),
            "{e:?}"
        );
        let e = errors(quote!(retries));
        assert_eq!(e, ["`retries` needs a value: write `retries = 2`"]);
        assert_eq!(closest_key("retires"), Some(Key::Retries));
    }

    #[test]
    fn bare_ignore_has_an_empty_reason() {
        assert_eq!(config(quote!(ignore)).ignore.as_deref(), Some(""));
    }

    #[test]
    fn a_k8s_list_is_a_matrix() {
        let c = config(quote!(
            k8s = ["1.29", "1.30", "1.29.3"],
            worker_versions = ["1.28"]
        ));
        assert_eq!(c.k8s, [v("1.29"), v("1.30"), v("1.29.3")]);
    }

    #[test]
    fn the_same_version_written_twice_is_a_duplicate_matrix_entry() {
        let e = errors(quote!(k8s = ["1.29", "v1.29"]));
        assert_eq!(
            e,
            ["`1.29` is already in the `k8s` matrix: remove this entry"]
        );
    }

    #[test]
    fn reports_every_mistake_at_once() {
        let e = errors(quote!(
            wokers = 3,
            masters = "3",
            masters = 1,
            timeout = "soon"
        ));
        assert_eq!(e.len(), 4, "{e:#?}");
        assert_eq!(e[0], "unknown key `wokers`: did you mean `workers`?");
        assert!(e[1].starts_with("`masters` takes a whole number of nodes, not a string"));
        assert!(e[2].starts_with("duplicate key `masters`"));
        assert!(e[3].starts_with("`timeout = \"soon\"` is not a duration"));
    }

    #[test]
    fn suggests_keys_for_typos_and_extensions() {
        assert_eq!(closest_key("wokers"), Some(Key::Workers));
        assert_eq!(closest_key("Masters"), Some(Key::Masters));
        assert_eq!(closest_key("k8"), Some(Key::K8s));
        assert_eq!(closest_key("worker_version"), Some(Key::WorkerVersions));
        assert_eq!(closest_key("timeout_secs"), Some(Key::Timeout));
        assert_eq!(closest_key("k8s_version"), Some(Key::K8s));
        assert_eq!(closest_key("replicas"), None);
    }

    #[test]
    fn levenshtein_counts_insertions_deletions_and_substitutions() {
        use strsim::levenshtein as edit_distance;
        assert_eq!(edit_distance("workers", "workers"), 0);
        assert_eq!(edit_distance("wokers", "workers"), 1);
        assert_eq!(edit_distance("workerz", "workers"), 1);
        assert_eq!(edit_distance("", "k8s"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn rewrites_wrong_kinds_into_the_right_ones() {
        let e = errors(quote!(masters = "3"));
        assert!(e[0].ends_with("write `masters = 3`"), "{e:?}");
        let e = errors(quote!(k8s = 1.29));
        assert!(e[0].ends_with("write `k8s = \"1.29\"`"), "{e:?}");
        let e = errors(quote!(worker_versions = "1.28"));
        assert!(
            e[0].ends_with("write `worker_versions = [\"1.28\"]`"),
            "{e:?}"
        );
        let e = errors(quote!(timeout = 90));
        assert!(e[0].ends_with("write `timeout = \"90s\"`"), "{e:?}");
        let e = errors(quote!(worker_versions = [1.28]));
        assert_eq!(
            e,
            ["a version is a string, not a number with a fraction: write \"1.28\""]
        );
    }

    #[test]
    fn node_counts_are_bounded_by_what_kubernetes_supports() {
        let bound = "is more nodes than Kubernetes supports in one cluster, 5000 \
                     (kubernetes.io/docs/setup/best-practices/cluster-large): use fewer";
        assert_eq!(
            errors(quote!(workers = 4000000000)),
            [format!("`workers = 4000000000` {bound}")]
        );
        // Beyond `u32` and `u64` alike: one message, not a parse error.
        assert_eq!(
            errors(quote!(masters = 5001, workers = 100000000000000000000)),
            [
                format!("`masters = 5001` {bound}"),
                format!("`workers = 100000000000000000000` {bound}"),
            ]
        );
        let e = errors(quote!(masters = 3000, workers = 2001));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("a cluster of 5001 nodes"), "{e:?}");
        let long = vec![quote!("1.29"); 5001];
        assert_eq!(
            errors(quote!(worker_versions = [#(#long),*])),
            [format!("`worker_versions = [..5001 entries]` {bound}")]
        );
        let c = config(quote!(masters = 1, workers = 4999));
        assert_eq!((c.masters, c.workers), (1, 4999));
    }

    #[test]
    fn timeouts_must_be_positive_whole_milliseconds() {
        assert_eq!(
            config(quote!(timeout = "1500ms")).timeout,
            Some(Duration::from_millis(1500))
        );
        assert!(errors(quote!(timeout = "0s"))[0].starts_with("a zero `timeout`"));
        assert!(errors(quote!(timeout = "1ms 5us"))[0].contains("whole milliseconds"));
    }

    #[test]
    fn worker_versions_without_workers_is_a_mistake() {
        let e = errors(quote!(workers = 0, worker_versions = ["1.28"]));
        assert!(
            e[0].starts_with("`worker_versions` is given but `workers = 0`"),
            "{e:?}"
        );
    }

    #[test]
    fn a_matrix_names_the_entry_whose_topology_fails() {
        let e = errors(quote!(k8s = ["1.30", "1.33"], worker_versions = ["1.29"]));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("with `k8s = \"1.33\"` of the matrix: a 1.29 kubelet"),
            "{e:?}"
        );
    }

    #[test]
    fn a_fault_in_the_default_k8s_says_it_was_defaulted() {
        let e = errors(quote!(master_versions = ["1.29"]));
        let newer = format!("a {DEFAULT_K8S} kubelet is newer than its 1.29 control plane");
        assert!(e[0].contains(&newer), "{e:?}");
        let note = format!("(`k8s` is not given and defaults to \"{DEFAULT_K8S}\")");
        assert!(e[0].ends_with(&note), "{e:?}");
    }
}
