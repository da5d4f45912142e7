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
