//! The run's settings, from `CHAOS_*` environment variables. A bad value is an error that names the
//! variable and what it accepts: never a silent default.

use std::ffi::OsString;
use std::path::PathBuf;
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
    /// `CHAOS_PARTITION`: run only this shard's topologies (`harness/shard.rs`).
    pub partition: Option<super::shard::Partition>,
    /// `CHAOS_RETRIES`: how many times a failed test without `retries = N` runs again.
    pub retries: u32,
    /// `CHAOS_TEST_SEED`: the seed of each selected test's first attempt, instead of the one
    /// derived from the run seed and its name (a reproduce line of a retry names it).
    pub test_seed: Option<u64>,
    /// `CHAOS_JUNIT`: where the run writes its JUnit report (relative: to the current directory).
    pub junit: Option<PathBuf>,
    /// How often a plain progress line is printed where there is no live display (`0`: never).
    pub progress_every: Duration,
}

/// The most retries `CHAOS_RETRIES` accepts: as `#[chaos_test(retries = N)]` (chaos-macros
/// `config.rs`, `MAX_RETRIES`), since each attempt may run for the whole timeout.
pub(crate) const MAX_RETRIES: u32 = 10;

/// Most clusters alive at once that `CHAOS_MAX_CLUSTERS` accepts. Past this, a value is a slip:
/// 1,024 clusters of the smallest kind shape (one control plane, one worker) want about 1.3 TB
/// of memory (the kind provider's `memory_per_cluster`), and a value near `usize::MAX` would
/// panic in tokio's `Semaphore::new` (at most `usize::MAX >> 3` permits).
pub(crate) const MAX_CLUSTERS_LIMIT: usize = 1024;

/// The longest duration a `CHAOS_*` duration accepts: one year, as humantime counts it (365.25
/// days, so `1y` is allowed). Longer is a slip, and durations near the 2^64 s humantime parses
/// overflow the clock (`Instant + duration` panics in the sim's control plane).
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(31_557_600);

impl Settings {
    pub fn from_env() -> anyhow::Result<Settings> {
        Self::from_lookup(|key| std::env::var_os(key))
    }

    /// The settings from `var`, which looks a variable up as the OS holds it: a value that is not
    /// valid Unicode is an error naming the variable, never "unset".
    pub fn from_lookup(var: impl Fn(&str) -> Option<OsString>) -> anyhow::Result<Settings> {
        let var = |key: &str| text(key, var(key));
        let provider = match var("CHAOS_PROVIDER")? {
            None => ProviderChoice::Auto,
            Some(text) => {
                ProviderChoice::parse(&text).with_context(|| format!("CHAOS_PROVIDER={text}"))?
            }
        };
        let max_clusters = match var("CHAOS_MAX_CLUSTERS")? {
            None => None,
            Some(text) => match text.trim().parse::<u128>() {
                Ok(n) if (1..=MAX_CLUSTERS_LIMIT as u128).contains(&n) => Some(n as usize),
                Ok(n) if n > MAX_CLUSTERS_LIMIT as u128 => bail!(
                    "CHAOS_MAX_CLUSTERS={} is more than {MAX_CLUSTERS_LIMIT}, which would already \
                     want about 1.3 TB of memory for the smallest kind clusters; give a whole \
                     number from 1 to {MAX_CLUSTERS_LIMIT}",
                    text.trim()
                ),
                _ => bail!(
                    "CHAOS_MAX_CLUSTERS={text} is not a whole number of at least 1; give one \
                     from 1 to {MAX_CLUSTERS_LIMIT}"
                ),
            },
        };
        let seed = match var("CHAOS_SEED")? {
            None => None,
            Some(text) => Some(text.trim().parse::<u64>().with_context(|| {
                format!("CHAOS_SEED={text} is not a whole number (0 to 2^64-1)")
            })?),
        };
        let default_timeout = duration(&var, "CHAOS_TEST_TIMEOUT", Duration::from_secs(300))?;
        if default_timeout.is_zero() {
            // As `#[chaos_test(timeout = "0s")]` is refused (chaos-macros `config.rs`).
            bail!(
                "CHAOS_TEST_TIMEOUT is zero, which would fail every test before it starts; give a \
                 duration like 10m"
            );
        }
        Ok(Settings {
            provider,
            max_clusters,
            keep: parse_flag("CHAOS_KEEP", var("CHAOS_KEEP")?.as_deref())?,
            reuse: parse_flag("CHAOS_REUSE", var("CHAOS_REUSE")?.as_deref())?,
            seed,
            default_timeout,
            sim_provision_delay: duration(
                &var,
                "CHAOS_SIM_PROVISION_DELAY",
                Duration::from_millis(200),
            )?,
            sim_teardown_delay: duration(&var, "CHAOS_SIM_TEARDOWN_DELAY", Duration::ZERO)?,
            sim_timings: sim_timings(&var)?,
            partition: partition(&var)?,
            retries: retries(&var)?,
            test_seed: match var("CHAOS_TEST_SEED")? {
                None => None,
                Some(text) => Some(text.trim().parse::<u64>().with_context(|| {
                    format!("CHAOS_TEST_SEED={text} is not a whole number (0 to 2^64-1)")
                })?),
            },
            // Empty is unset, as for the switches: a CI template may pass it through empty.
            junit: var("CHAOS_JUNIT")?
                .filter(|path| !path.trim().is_empty())
                .map(PathBuf::from),
            progress_every: duration(
                &var,
                "CHAOS_PROGRESS_EVERY",
                crate::harness::progress::DEFAULT_EVERY,
            )?,
        })
    }
}

/// `CHAOS_PARTITION`: `hash:K/N` or `count:K/N`; unset or empty, no sharding.
fn partition(var: &Lookup<'_>) -> anyhow::Result<Option<super::shard::Partition>> {
    match var("CHAOS_PARTITION")? {
        Some(text) if !text.trim().is_empty() => {
            Ok(Some(text.parse().with_context(|| {
                format!("CHAOS_PARTITION={}", text.trim())
            })?))
        }
        _ => Ok(None),
    }
}

/// `CHAOS_RETRIES`: a whole number from 0 to [`MAX_RETRIES`], 0 when unset.
fn retries(var: &Lookup<'_>) -> anyhow::Result<u32> {
    let Some(text) = var("CHAOS_RETRIES")? else {
        return Ok(0);
    };
    match text.trim().parse::<u128>() {
        Ok(n) if n <= u128::from(MAX_RETRIES) => Ok(n as u32),
        _ => bail!(
            "CHAOS_RETRIES={} is not a whole number from 0 to {MAX_RETRIES}; give how many times a \
             failed test runs again, like 2",
            text.trim()
        ),
    }
}

/// A variable's value as text: `None` when unset, an error naming it when not valid Unicode.
fn text(key: &str, value: Option<OsString>) -> Result<Option<String>, SettingError> {
    value
        .map(|value| {
            value.into_string().map_err(|_| SettingError::NotUnicode {
                name: key.to_owned(),
            })
        })
        .transpose()
}

/// A lookup of a variable's text, as [`Settings::from_lookup`] hands it to the readers below.
type Lookup<'a> = dyn Fn(&str) -> Result<Option<String>, SettingError> + 'a;

/// `CHAOS_SIM_POD_START`, `CHAOS_SIM_NODE_GRACE`, `CHAOS_SIM_TOLERATION`: the sim's delays.
fn sim_timings(var: &Lookup<'_>) -> anyhow::Result<Timings> {
    let defaults = Timings::default();
    let toleration = duration(
        var,
        "CHAOS_SIM_TOLERATION",
        Duration::from_secs(defaults.default_toleration_seconds.into()),
    )?;
    let node_monitor_grace = duration(var, "CHAOS_SIM_NODE_GRACE", defaults.node_monitor_grace)?;
    if node_monitor_grace <= defaults.heartbeat {
        // A node goes Ready=Unknown after this long without a heartbeat (chaos-sim
        // `control/node_lifecycle.rs`), and the sim's kubelets beat every `heartbeat`.
        bail!(
            "CHAOS_SIM_NODE_GRACE={} is not longer than the sim kubelets' heartbeat ({}), so \
             every healthy node would go NotReady between two heartbeats; give a duration like 1s",
            humantime::format_duration(node_monitor_grace),
            humantime::format_duration(defaults.heartbeat)
        );
    }
    Ok(Timings {
        pod_start: duration(var, "CHAOS_SIM_POD_START", defaults.pod_start)?,
        node_monitor_grace,
        // The API counts tolerations in whole seconds; MAX_DURATION keeps them within u32.
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
    #[error("{name} is set to bytes that are not valid Unicode; set it to text or unset it")]
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
    parse_flag(name, text(name, std::env::var_os(name))?.as_deref())
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

fn duration(var: &Lookup<'_>, key: &str, default: Duration) -> anyhow::Result<Duration> {
    let Some(text) = var(key)? else {
        return Ok(default);
    };
    let value = humantime::parse_duration(text.trim()).with_context(|| {
        format!("{key}={text} is not a duration; write it like 90s, 10m or 500ms")
    })?;
    if value > MAX_DURATION {
        bail!(
            "{key}={} is longer than a year (1y), the longest duration a setting accepts; give \
             a duration like 10m",
            text.trim()
        );
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<Settings> {
        Settings::from_lookup(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| OsString::from(v))
        })
    }

    /// The error for the one variable `key` set to `value`, as the harness prints it.
    fn error(key: &str, value: &str) -> String {
        let err = settings(&[(key, value)]).expect_err(key);
        let text = format!("{err:#}");
        assert!(!text.contains('\n'), "one line: {text}");
        text
    }

    #[test]
    fn a_value_that_is_not_unicode_is_an_error_naming_the_variable_not_unset() {
        use std::os::unix::ffi::OsStringExt;
        for key in [
            "CHAOS_PROVIDER",
            "CHAOS_MAX_CLUSTERS",
            "CHAOS_SEED",
            "CHAOS_KEEP",
            "CHAOS_REUSE",
            "CHAOS_TEST_TIMEOUT",
            "CHAOS_SIM_PROVISION_DELAY",
            "CHAOS_SIM_POD_START",
            "CHAOS_SIM_NODE_GRACE",
            "CHAOS_SIM_TOLERATION",
            "CHAOS_PARTITION",
            "CHAOS_RETRIES",
            "CHAOS_TEST_SEED",
            "CHAOS_JUNIT",
        ] {
            let err = Settings::from_lookup(|k| {
                (k == key).then(|| OsString::from_vec(b"1\xff".to_vec()))
            })
            .expect_err(key);
            assert_eq!(
                format!("{err:#}"),
                format!(
                    "{key} is set to bytes that are not valid Unicode; set it to text or unset it"
                )
            );
        }
    }

    #[test]
    fn max_clusters_is_bounded_where_the_semaphore_would_panic() {
        assert_eq!(
            settings(&[("CHAOS_MAX_CLUSTERS", "1024")])
                .unwrap()
                .max_clusters,
            Some(MAX_CLUSTERS_LIMIT)
        );
        for huge in ["1025", "18446744073709551615", "99999999999999999999999"] {
            let err = error("CHAOS_MAX_CLUSTERS", huge);
            assert!(
                err.starts_with(&format!("CHAOS_MAX_CLUSTERS={huge} is more than 1024")),
                "{err}"
            );
            assert!(err.contains("from 1 to 1024"), "{err}");
        }
        assert!(
            error("CHAOS_MAX_CLUSTERS", "-1")
                .contains("not a whole number of at least 1; give one from 1 to 1024")
        );
    }

    #[test]
    fn a_zero_test_timeout_is_refused_as_the_attribute_refuses_it() {
        for zero in ["0s", "0ms", " 0 s "] {
            let err = error("CHAOS_TEST_TIMEOUT", zero);
            assert!(
                err.starts_with("CHAOS_TEST_TIMEOUT is zero, which would fail every test"),
                "{err}"
            );
        }
    }

    #[test]
    fn durations_longer_than_a_year_are_refused() {
        assert_eq!(
            settings(&[("CHAOS_TEST_TIMEOUT", "1y")])
                .unwrap()
                .default_timeout,
            MAX_DURATION
        );
        for key in [
            "CHAOS_TEST_TIMEOUT",
            "CHAOS_SIM_PROVISION_DELAY",
            "CHAOS_SIM_POD_START",
            "CHAOS_SIM_NODE_GRACE",
            "CHAOS_SIM_TOLERATION",
        ] {
            for huge in ["1y 1s", "18446744073709551615s"] {
                let err = error(key, huge);
                assert!(
                    err.starts_with(&format!("{key}={huge} is longer than a year (1y)")),
                    "{err}"
                );
            }
        }
    }

    #[test]
    fn a_node_grace_within_one_heartbeat_is_refused() {
        for short in ["0s", "250ms"] {
            let err = error("CHAOS_SIM_NODE_GRACE", short);
            assert!(
                err.contains("is not longer than the sim kubelets' heartbeat (250ms)"),
                "{err}"
            );
        }
        let grace = settings(&[("CHAOS_SIM_NODE_GRACE", "251ms")]).unwrap();
        assert_eq!(
            grace.sim_timings.node_monitor_grace,
            Duration::from_millis(251)
        );
        // Zero is a meaningful value for the others.
        let zeros = settings(&[
            ("CHAOS_SIM_PROVISION_DELAY", "0s"),
            ("CHAOS_SIM_POD_START", "0s"),
            ("CHAOS_SIM_TOLERATION", "0s"),
        ])
        .unwrap();
        assert_eq!(zeros.sim_timings.default_toleration_seconds, 0);
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
        assert_eq!((s.retries, s.test_seed, s.junit), (0, None, None));
    }

    #[test]
    fn retries_are_bounded_as_the_attribute_bounds_them() {
        assert_eq!(settings(&[("CHAOS_RETRIES", " 10 ")]).unwrap().retries, 10);
        assert_eq!(settings(&[("CHAOS_RETRIES", "0")]).unwrap().retries, 0);
        for bad in [
            "11",
            "-1",
            "two",
            "",
            "99999999999999999999999999999999999999999",
        ] {
            let err = error("CHAOS_RETRIES", bad);
            assert!(
                err.starts_with(&format!(
                    "CHAOS_RETRIES={bad} is not a whole number from 0 to 10"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn junit_is_a_path_and_empty_is_unset() {
        let s = settings(&[("CHAOS_JUNIT", "target/junit.xml")]).unwrap();
        assert_eq!(s.junit, Some(PathBuf::from("target/junit.xml")));
        assert_eq!(settings(&[("CHAOS_JUNIT", " ")]).unwrap().junit, None);
        assert_eq!(
            settings(&[("CHAOS_TEST_SEED", "17")]).unwrap().test_seed,
            Some(17)
        );
        assert!(error("CHAOS_TEST_SEED", "x").contains("is not a whole number"));
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
            ("CHAOS_MAX_CLUSTERS", "0", "from 1 to 1024"),
            ("CHAOS_SEED", "abc", "whole number"),
            ("CHAOS_KEEP", "maybe", "use 1 or 0"),
            ("CHAOS_TEST_TIMEOUT", "soon", "like 90s"),
        ] {
            let err = format!("{:#}", settings(&[(key, value)]).unwrap_err());
            assert!(err.contains(key) && err.contains(hint), "{err}");
        }
    }

    #[test]
    fn partition_is_read_and_a_bad_one_is_one_line_naming_it() {
        use super::super::shard::{Mode, Partition};
        assert_eq!(settings(&[]).unwrap().partition, None);
        assert_eq!(
            settings(&[("CHAOS_PARTITION", " ")]).unwrap().partition,
            None
        );
        assert_eq!(
            settings(&[("CHAOS_PARTITION", "count:2/3")])
                .unwrap()
                .partition,
            Some(Partition {
                mode: Mode::Count,
                shard: 2,
                total: 3
            })
        );
        for (bad, hint) in [
            ("hash:0/2", "no shard 0"),
            ("hash:3/2", "shard 3 of 2 does not exist"),
            ("3/2", "does not start with hash: or count:"),
            ("foo", "does not start with hash: or count:"),
        ] {
            let err = error("CHAOS_PARTITION", bad);
            assert!(
                err.starts_with(&format!("CHAOS_PARTITION={bad}: ")) && err.contains(hint),
                "{err}"
            );
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
