//! The run's settings, from `CHAOS_*` environment variables. A bad value is an error that names the
//! variable and what it accepts: never a silent default.

use std::time::Duration;

use anyhow::{Context, bail};

use chaos_sim::control::Timings;

/// Which provider makes clusters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProviderChoice {
    /// The first registered provider that can run here.
    Auto,
    /// This registered provider, or an error.
    Named(&'static str),
}

impl ProviderChoice {
    pub fn parse(text: &str) -> anyhow::Result<ProviderChoice> {
        let text = text.trim();
        if text.is_empty() || text == "auto" {
            return Ok(ProviderChoice::Auto);
        }
        match crate::provider::names().find(|name| *name == text) {
            Some(name) => Ok(ProviderChoice::Named(name)),
            None => {
                let names: Vec<&str> = crate::provider::names().collect();
                bail!(
                    "`{text}` is not a provider; use {} or auto",
                    names.join(", ")
                )
            }
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub provider: ProviderChoice,
    /// `None`: derived from host memory once the provider is known.
    pub max_clusters: Option<usize>,
    pub keep: bool,
    pub reuse: bool,
    /// `None`: a random run seed, printed.
    pub seed: Option<u64>,
    /// Per-test limit for tests that do not set `timeout`.
    pub default_timeout: Duration,
    /// How long the sim takes to "provision" a cluster, standing in for kind's creation time.
    pub sim_provision_delay: Duration,
    /// How long the sim takes to remove a cluster, standing in for `kind delete cluster`.
    pub sim_teardown_delay: Duration,
    /// The sim's control-plane delays.
    pub sim_timings: Timings,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Settings> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Settings> {
        let provider = match var("CHAOS_PROVIDER") {
            None => ProviderChoice::Auto,
            Some(text) => {
                ProviderChoice::parse(&text).with_context(|| format!("CHAOS_PROVIDER={text}"))?
            }
        };
        let max_clusters = match var("CHAOS_MAX_CLUSTERS") {
            None => None,
            Some(text) => match text.trim().parse::<usize>() {
                Ok(n) if n >= 1 => Some(n),
                _ => bail!("CHAOS_MAX_CLUSTERS={text} is not a whole number of at least 1"),
            },
        };
        let seed = match var("CHAOS_SEED") {
            None => None,
            Some(text) => Some(text.trim().parse::<u64>().with_context(|| {
                format!("CHAOS_SEED={text} is not a whole number (0 to 2^64-1)")
            })?),
        };
        Ok(Settings {
            provider,
            max_clusters,
            keep: flag_in(&var, "CHAOS_KEEP")?,
            reuse: flag_in(&var, "CHAOS_REUSE")?,
            seed,
            default_timeout: duration(&var, "CHAOS_TEST_TIMEOUT", Duration::from_secs(300))?,
            sim_provision_delay: duration(
                &var,
                "CHAOS_SIM_PROVISION_DELAY",
                Duration::from_millis(200),
            )?,
            sim_teardown_delay: duration(&var, "CHAOS_SIM_TEARDOWN_DELAY", Duration::ZERO)?,
            sim_timings: sim_timings(&var)?,
        })
    }
}

/// `CHAOS_SIM_POD_START`, `CHAOS_SIM_NODE_GRACE`, `CHAOS_SIM_TOLERATION`: the sim's delays.
fn sim_timings(var: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Timings> {
    let defaults = Timings::default();
    let toleration = duration(
        var,
        "CHAOS_SIM_TOLERATION",
        Duration::from_secs(defaults.default_toleration_seconds.into()),
    )?;
    Ok(Timings {
        pod_start: duration(var, "CHAOS_SIM_POD_START", defaults.pod_start)?,
        node_monitor_grace: duration(var, "CHAOS_SIM_NODE_GRACE", defaults.node_monitor_grace)?,
        // The API counts tolerations in whole seconds.
        default_toleration_seconds: toleration.as_secs().try_into().unwrap_or(u32::MAX),
        ..defaults
    })
}

/// A setting that could not be read: names the variable and what it accepts.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingError {
    /// An on/off variable set to something that is neither.
    #[error("{name}={value} is not a switch; use 1 or 0 (or true/false, yes/no, on/off)")]
    NotASwitch {
        /// The variable.
        name: String,
        /// What it was set to.
        value: String,
    },
    /// A variable whose value is not valid Unicode.
    #[error("{name} is not valid Unicode; use 1 or 0 (or true/false, yes/no, on/off)")]
    NotUnicode {
        /// The variable.
        name: String,
    },
}

/// The on/off environment variable `name`: the one rule every `CHAOS_*` switch follows.
///
/// On: `1`, `true`, `yes`, `on`. Off: `0`, `false`, `no`, `off`, empty, or unset. Case and
/// surrounding whitespace do not matter; anything else is an error, never a silent default.
pub(crate) fn flag(name: &str) -> Result<bool, SettingError> {
    match std::env::var(name) {
        Ok(value) => parse_flag(name, Some(&value)),
        Err(std::env::VarError::NotPresent) => parse_flag(name, None),
        Err(std::env::VarError::NotUnicode(_)) => Err(SettingError::NotUnicode {
            name: name.to_owned(),
        }),
    }
}

/// [`flag`]'s rule applied to a value already looked up (`None`: unset).
pub(crate) fn parse_flag(name: &str, value: Option<&str>) -> Result<bool, SettingError> {
    let Some(value) = value else {
        return Ok(false);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(SettingError::NotASwitch {
            name: name.to_owned(),
            value: value.trim().to_owned(),
        }),
    }
}

/// [`parse_flag`] over a lookup function, for [`Settings::from_lookup`].
fn flag_in(var: &impl Fn(&str) -> Option<String>, key: &str) -> Result<bool, SettingError> {
    parse_flag(key, var(key).as_deref())
}

fn duration(
    var: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: Duration,
) -> anyhow::Result<Duration> {
    match var(key) {
        None => Ok(default),
        Some(text) => humantime::parse_duration(text.trim()).with_context(|| {
            format!("{key}={text} is not a duration; write it like 90s, 10m or 500ms")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<Settings> {
        Settings::from_lookup(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.provider, ProviderChoice::Auto);
        assert_eq!(
            (s.max_clusters, s.keep, s.reuse, s.seed),
            (None, false, false, None)
        );
        assert_eq!(s.default_timeout, Duration::from_secs(300));
    }

    #[test]
    fn reads_every_variable() {
        let s = settings(&[
            ("CHAOS_PROVIDER", "sim"),
            ("CHAOS_MAX_CLUSTERS", "2"),
            ("CHAOS_KEEP", "1"),
            ("CHAOS_SEED", "42"),
            ("CHAOS_TEST_TIMEOUT", "90s"),
            ("CHAOS_SIM_PROVISION_DELAY", "5ms"),
            ("CHAOS_SIM_POD_START", "1s"),
            ("CHAOS_SIM_NODE_GRACE", "40s"),
            ("CHAOS_SIM_TOLERATION", "300s"),
        ])
        .unwrap();
        assert_eq!(s.provider, ProviderChoice::Named("sim"));
        assert_eq!((s.max_clusters, s.keep, s.seed), (Some(2), true, Some(42)));
        assert_eq!(s.default_timeout, Duration::from_secs(90));
        assert_eq!(s.sim_provision_delay, Duration::from_millis(5));
        assert_eq!(s.sim_timings.pod_start, Duration::from_secs(1));
        assert_eq!(s.sim_timings.node_monitor_grace, Duration::from_secs(40));
        assert_eq!(s.sim_timings.default_toleration_seconds, 300);
    }

    #[test]
    fn bad_values_name_the_variable_and_the_fix() {
        for (key, value, hint) in [
            ("CHAOS_PROVIDER", "docker", "use kind, sim or auto"),
            ("CHAOS_MAX_CLUSTERS", "0", "at least 1"),
            ("CHAOS_SEED", "abc", "whole number"),
            ("CHAOS_KEEP", "maybe", "use 1 or 0"),
            ("CHAOS_TEST_TIMEOUT", "soon", "like 90s"),
        ] {
            let err = format!("{:#}", settings(&[(key, value)]).unwrap_err());
            assert!(err.contains(key) && err.contains(hint), "{err}");
        }
    }

    #[test]
    fn switches_accept_the_usual_words_in_any_case() {
        for on in ["1", "true", "TRUE", "yes", "Yes", "on", " ON "] {
            assert!(parse_flag("CHAOS_KEEP", Some(on)).unwrap(), "{on:?}");
        }
        for off in ["", "  ", "0", "false", "False", "no", "NO", "off"] {
            assert!(!parse_flag("CHAOS_KEEP", Some(off)).unwrap(), "{off:?}");
        }
        assert!(!parse_flag("CHAOS_KEEP", None).unwrap());
        assert!(settings(&[("CHAOS_REUSE", "on")]).unwrap().reuse);
    }

    #[test]
    fn a_bad_switch_names_the_variable_and_what_it_accepts() {
        let err = parse_flag("CHAOS_REUSE", Some("2"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "CHAOS_REUSE=2 is not a switch; use 1 or 0 (or true/false, yes/no, on/off)"
        );
    }
}
