//! The sim's node faults, over its control plane's kubelets. The sim has no containers or network:
//! a stopped or killed node is a kubelet stopped with its containers killed; a paused, isolated or
//! cut-off node, and a stopped kubelet, are a kubelet that stops reporting while its containers
//! keep running. Delay and loss have no effect, and the timeline says so.
//!
//! Every fault in effect is a cause that keeps its nodes' kubelets down, and a kubelet runs again
//! only when its node has no cause left, as on kind: undoing one of two faults on a node leaves
//! it down, and starting a node does not end a partition.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use anyhow::bail;
use chaos_sim::control::ControlPlane;
use futures::future::BoxFuture;

use crate::faults::{Applied, Boot, NodeFault, NodeFaults, Undo};

/// Why a node's kubelet is down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    /// Stopped or killed: its containers are gone; a start boots it afresh.
    Down,
    /// Paused: ended by a start.
    Paused,
    /// Its kubelet stopped: ended by a kubelet start or a fresh boot.
    KubeletStopped,
    /// Cut off by an isolation or a partition: ended only by its undo.
    CutOff,
}

/// The node faults of one sim cluster.
pub(crate) struct SimNodes {
    state: Arc<State>,
}

struct State {
    control: Arc<ControlPlane>,
    /// The cluster's nodes, and which are control planes (a partition cuts off the side with
    /// fewer of them: the other keeps the API server).
    control_planes: Vec<String>,
    all: Vec<String>,
    /// Per node: the causes in effect, each with the id of the fault that made it.
    causes: Mutex<BTreeMap<String, Vec<(u64, Cause)>>>,
    next: AtomicU64,
}

impl SimNodes {
    pub fn new(control: Arc<ControlPlane>, all: Vec<String>, control_planes: Vec<String>) -> Self {
        SimNodes {
            state: Arc::new(State {
                control,
                control_planes,
                all,
                causes: Mutex::default(),
                next: AtomicU64::new(1),
            }),
        }
    }
}

impl State {
    fn causes(&self) -> MutexGuard<'_, BTreeMap<String, Vec<(u64, Cause)>>> {
        self.causes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn check(&self, node: &str) -> anyhow::Result<()> {
        match self.all.iter().any(|n| n == node) {
            true => Ok(()),
            false => bail!("the cluster has no node {node}"),
        }
    }

    /// Puts `cause` on `nodes` and stops their kubelets; returns what undoes exactly that.
    fn add(self: &Arc<Self>, nodes: &[String], cause: Cause) -> CauseUndo {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut causes = self.causes();
        for node in nodes {
            match cause {
                Cause::Down => self.control.crash_node(node),
                _ => self.control.stop_kubelet(node),
            }
            causes.entry(node.clone()).or_default().push((id, cause));
        }
        CauseUndo {
            state: self.clone(),
            id,
            nodes: nodes.to_vec(),
        }
    }

    /// Drops the causes of `node` that `ended` names, and starts its kubelet if none is left.
    fn end(&self, node: &str, ended: impl Fn(u64, Cause) -> bool) {
        let mut causes = self.causes();
        let left = causes.entry(node.to_owned()).or_default();
        left.retain(|&(id, cause)| !ended(id, cause));
        if left.is_empty() {
            self.control.start_kubelet(node);
        }
    }

    fn has(&self, node: &str, cause: Cause) -> bool {
        self.causes()
            .get(node)
            .is_some_and(|c| c.iter().any(|&(_, c)| c == cause))
    }
}

/// Undoes one fault: its cause leaves every node it was put on.
struct CauseUndo {
    state: Arc<State>,
    id: u64,
    nodes: Vec<String>,
}

impl Undo for CauseUndo {
    fn undo(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        for node in &self.nodes {
            self.state.end(node, |id, _| id == self.id);
        }
        Box::pin(async { Ok(()) })
    }
}

/// Nothing to undo (delay and loss, which the sim cannot model).
struct NoEffect;

impl Undo for NoEffect {
    fn undo(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

impl NodeFaults for SimNodes {
    fn apply<'a>(
        &'a self,
        node: &'a str,
        fault: &'a NodeFault,
    ) -> BoxFuture<'a, anyhow::Result<Applied>> {
        Box::pin(async move {
            let state = &self.state;
            let one = || vec![node.to_owned()];
            let undo = match fault {
                NodeFault::Partition { a, b } => {
                    for node in a.iter().chain(b) {
                        state.check(node)?;
                    }
                    let masters = |side: &[String]| {
                        side.iter()
                            .filter(|n| state.control_planes.contains(n))
                            .count()
                    };
                    // No network: the side that keeps the most control planes keeps the API
                    // server; the other side's kubelets can no longer report.
                    let cut_off = if masters(a) >= masters(b) { b } else { a };
                    state.add(cut_off, Cause::CutOff)
                }
                NodeFault::Netem { .. } => {
                    state.check(node)?;
                    return Ok(Applied {
                        undo: Box::new(NoEffect),
                        caveat: Some("the sim has no data plane: no effect"),
                    });
                }
                fault => {
                    state.check(node)?;
                    let cause = match fault {
                        NodeFault::Stop | NodeFault::Kill => Cause::Down,
                        NodeFault::Pause => Cause::Paused,
                        NodeFault::KubeletStop => Cause::KubeletStopped,
                        _ => Cause::CutOff, // Isolate, and any fault added later.
                    };
                    state.add(&one(), cause)
                }
            };
            Ok(Applied::real(undo))
        })
    }

    fn start<'a>(&'a self, node: &'a str) -> BoxFuture<'a, anyhow::Result<Boot>> {
        Box::pin(async move {
            self.state.check(node)?;
            let boot = match self.state.has(node, Cause::Down) {
                true => Boot::Fresh,
                false => Boot::WasRunning,
            };
            self.state.end(node, |_, cause| match cause {
                Cause::Down | Cause::Paused => true,
                Cause::KubeletStopped => boot == Boot::Fresh,
                Cause::CutOff => false,
            });
            Ok(boot)
        })
    }

    fn restart<'a>(&'a self, node: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.state.check(node)?;
            // Its containers restart with it.
            self.state.control.crash_node(node);
            self.state.end(node, |_, cause| {
                matches!(cause, Cause::Down | Cause::KubeletStopped)
            });
            Ok(())
        })
    }

    fn kubelet_start<'a>(&'a self, node: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.state.check(node)?;
            self.state
                .end(node, |_, cause| cause == Cause::KubeletStopped);
            Ok(())
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
