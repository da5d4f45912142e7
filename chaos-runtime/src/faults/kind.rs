//! The faults a node can be put in: one type for the `Node` API, the monkey, the ledger and every
//! provider.

use std::fmt;
use std::time::Duration;

/// A fault applied to one or more nodes.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum NodeFault {
    /// The node shut down (kind: `docker stop`, systemd's shutdown, SIGKILL after 10 s); its pods
    /// die with it.
    Stop,
    /// The node killed outright (kind: `docker kill`, no shutdown at all).
    Kill,
    /// Every process of the node frozen (kind: `docker pause`); peers see silence, not resets.
    Pause,
    /// The node's kubelet stopped: the node goes NotReady while its pods keep running.
    KubeletStop,
    /// The node cut off from every other node of its cluster.
    Isolate,
    /// No packets between any node of `a` and any node of `b`, in either direction.
    Partition {
        /// One side, by node name.
        a: Vec<String>,
        /// The other side.
        b: Vec<String>,
    },
    /// Every packet the node sends delayed and/or dropped (kind: `tc netem`).
    Netem {
        /// Added to every packet.
        delay: Option<Duration>,
        /// Share of packets dropped, 0 to 100.
        loss_percent: Option<f64>,
    },
}

impl NodeFault {
    /// Whether a fresh boot of the node ends this fault: a started node runs its kubelet, in a new
    /// network namespace without netem.
    pub(crate) fn ended_by_boot(&self) -> bool {
        matches!(
            self,
            NodeFault::Stop | NodeFault::Kill | NodeFault::KubeletStop | NodeFault::Netem { .. }
        )
    }
}

/// The largest delay `tc … netem delay` takes: `get_time64` (iproute2 lib/utils.c) parses it
/// into a signed 64-bit count of nanoseconds (`__s64 latency64` in tc/q_netem.c).
const MAX_NETEM_DELAY: Duration = Duration::from_nanos(i64::MAX as u64);

impl NodeFault {
    /// Why no provider may apply this fault as given, in one line that says what to pass
    /// instead. Checked before anything is applied, on every provider, so a value kind's
    /// backend refuses is not taken silently by the sim.
    ///
    /// netem's parameters follow what `tc qdisc … netem` accepts (iproute2 tc/q_netem.c,
    /// man tc-netem(8)): `loss` takes a number (`loss` followed by anything but a digit,
    /// `random`, `state` or `gemodel` is an "Unknown loss parameter", which is how `NaN%`,
    /// `inf%` and `-1%` end), and `parse_percent` (tc/tc_util.c) refuses a share outside
    /// 0–100 %; `delay` goes through `get_time64` (lib/utils.c), a signed 64-bit count of
    /// nanoseconds.
    pub(crate) fn check(&self) -> Result<(), String> {
        let NodeFault::Netem {
            delay,
            loss_percent,
        } = self
        else {
            return Ok(());
        };
        if delay.is_none() && loss_percent.is_none() {
            return Err(
                "netem needs a delay, a loss percentage or both; give at least one".to_owned(),
            );
        }
        if let Some(delay) = delay
            && *delay > MAX_NETEM_DELAY
        {
            return Err(format!(
                "netem delay {} is more than tc can express (a signed 64-bit count of \
                 nanoseconds, about 292 years); give a shorter delay",
                humantime::format_duration(*delay)
            ));
        }
        if let Some(loss) = loss_percent
            && !(loss.is_finite() && (0.0..=100.0).contains(loss))
        {
            return Err(format!(
                "netem loss must be a percentage from 0 to 100 (tc refuses anything else), \
                 not {loss}; e.g. 2.5 drops 2.5 % of packets"
            ));
        }
        Ok(())
    }
}

impl fmt::Display for NodeFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeFault::Stop => write!(f, "stop"),
            NodeFault::Kill => write!(f, "kill"),
            NodeFault::Pause => write!(f, "pause"),
            NodeFault::KubeletStop => write!(f, "kubelet stop"),
            NodeFault::Isolate => write!(f, "isolate"),
            NodeFault::Partition { a, b } => {
                write!(f, "partition {} | {}", a.join(", "), b.join(", "))
            }
            NodeFault::Netem {
                delay,
                loss_percent,
            } => {
                write!(f, "netem")?;
                if let Some(delay) = delay {
                    write!(f, " delay {}", humantime::format_duration(*delay))?;
                }
                match loss_percent {
                    Some(loss) => write!(f, " loss {loss}%"),
                    None => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn netem(delay: Option<Duration>, loss_percent: Option<f64>) -> NodeFault {
        NodeFault::Netem {
            delay,
            loss_percent,
        }
    }

    #[test]
    fn netem_values_tc_refuses_are_refused_with_the_value_and_the_range() {
        for loss in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.5,
            100.5,
            1e300,
        ] {
            let error = netem(None, Some(loss)).check().unwrap_err();
            assert!(
                error.contains("from 0 to 100") && error.contains(&format!("not {loss}")),
                "{error}"
            );
            assert!(!error.contains('\n'), "one line: {error}");
        }
        let error = netem(Some(Duration::MAX), None).check().unwrap_err();
        assert!(error.contains("more than tc can express"), "{error}");
        let error = netem(None, None).check().unwrap_err();
        assert!(
            error.contains("a delay, a loss percentage or both"),
            "{error}"
        );
    }

    #[test]
    fn netem_values_tc_takes_pass_and_other_faults_have_nothing_to_check() {
        for loss in [0.0, 0.001, 2.5, 100.0] {
            netem(None, Some(loss)).check().unwrap();
        }
        netem(Some(Duration::ZERO), None).check().unwrap();
        netem(Some(MAX_NETEM_DELAY), Some(50.0)).check().unwrap();
        NodeFault::Stop.check().unwrap();
    }
}
