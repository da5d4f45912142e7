//! The DefaultTolerationSeconds admission plugin. The real one mutates the pod inside the
//! create request; here it is applied right after the create, before a node can have gone
//! away under the pod (the ReplicaSet controller adds the tolerations to its pods itself).

use super::{Controller, POD, Timings, WatchEvent, is, list, modify_pod, taints};
use crate::{ApiServer, EventKind};

pub(super) struct Admission {
    server: ApiServer,
    seconds: u32,
}

impl Admission {
    pub fn new(server: &ApiServer, timings: &Timings) -> Self {
        Self {
            server: server.clone(),
            seconds: timings.default_toleration_seconds,
        }
    }

    fn admit(&self, pod: &serde_json::Value) {
        if taints::default_tolerations(pod, self.seconds).is_empty() {
            return;
        }
        modify_pod(&self.server, pod, |pod| {
            let missing = taints::default_tolerations(pod, self.seconds);
            if missing.is_empty() {
                return false;
            }
            let mut tolerations = taints::tolerations(pod).to_vec();
            tolerations.extend(missing);
            pod["spec"]["tolerations"] = tolerations.into();
            true
        });
    }
}

impl Controller for Admission {
    fn resync(&mut self) {
        for pod in list(&self.server, POD, None) {
            self.admit(&pod);
        }
    }

    fn on_event(&mut self, event: &WatchEvent) {
        if event.kind == EventKind::Added && is(event, POD) {
            self.admit(&event.object);
        }
    }
}
