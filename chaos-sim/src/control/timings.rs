//! How fast the simulated cluster moves. The defaults are the real components' behaviour
//! compressed to fractions of a second, so that fault scenarios play out quickly offline.

use std::time::Duration;

/// The simulated components' delays: pod start-up, kubelet heartbeats, node-failure detection and
/// the default eviction tolerations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timings {
    /// From a pod bound to a node to its containers running and Ready (image pull, start,
    /// readiness probe).
    pub pod_start: Duration,
    /// The kubelet renews its node's Lease this often (real: 10 s).
    pub heartbeat: Duration,
    /// Without a heartbeat for this long, a node goes `Ready=Unknown`
    /// (`--node-monitor-grace-period`, real: 40 s, 50 s since 1.32).
    pub node_monitor_grace: Duration,
    /// `tolerationSeconds` of the `not-ready` and `unreachable` tolerations the
    /// DefaultTolerationSeconds admission plugin adds (real: 300). Whole seconds, as the API
    /// counts them.
    pub default_toleration_seconds: u32,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            pod_start: Duration::from_millis(200),
            heartbeat: Duration::from_millis(250),
            node_monitor_grace: Duration::from_secs(1),
            default_toleration_seconds: 2,
        }
    }
}
