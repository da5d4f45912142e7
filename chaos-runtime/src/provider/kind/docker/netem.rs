//! Delay and loss on a node's network interface with `tc … netem`.
//!
//! netem is a kernel queueing discipline (`sch_netem`) of the host: node containers share the
//! host's kernel. Where it is a module, `modprobe` inside the node can load it (kind nodes mount
//! `/lib/modules` and are privileged); where the kernel was built without it, nothing inside a
//! container can help, and the error says so.

use std::time::Duration;

use super::script::Script;
use super::{Docker, DockerError, DockerErrorKind};
use crate::faults::NodeFault;

/// The node's interface on kind's network: a node has no other.
const DEVICE: &str = "eth0";

/// What `tc` prints when the kernel has no netem qdisc (wording differs between iproute2 versions).
const NO_NETEM: [&str; 2] = [
    "Specified qdisc kind is unknown",
    "Specified qdisc not found",
];

/// Replaces the root qdisc of the node's `eth0` with netem.
pub(crate) async fn apply(
    docker: &Docker,
    node: &str,
    delay: Option<Duration>,
    loss_percent: Option<f64>,
) -> Result<(), DockerError> {
    let args = tc_args(node, delay, loss_percent)?;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match docker.exec(node, &args).await {
        Err(error) if lacks_netem(&error) => {
            load_module(docker, node).await?;
            docker.exec(node, &args).await.map(drop)
        }
        result => result.map(drop),
    }
}

/// Removes a netem root qdisc from the node's `eth0`, if there is one.
pub(crate) async fn remove(docker: &Docker, node: &str) -> Result<(), DockerError> {
    let mut script = Script::new();
    let has_netem = format!("tc qdisc show dev {DEVICE} root | grep -q netem");
    script.must_if(&has_netem, &["tc", "qdisc", "del", "dev", DEVICE, "root"]);
    docker.run_script(node, &script).await.map(drop)
}

fn tc_args(
    node: &str,
    delay: Option<Duration>,
    loss_percent: Option<f64>,
) -> Result<Vec<String>, DockerError> {
    // The same check every provider makes before applying (`NodeFault::check`), kept here for
    // callers of the ledger that do not go through the fault API.
    let fault = NodeFault::Netem {
        delay,
        loss_percent,
    };
    if let Err(problem) = fault.check() {
        return Err(DockerError::new(
            DockerErrorKind::InvalidRequest,
            Some(node),
            problem,
        ));
    }
    let mut args: Vec<String> = ["tc", "qdisc", "replace", "dev", DEVICE, "root", "netem"]
        .map(String::from)
        .into();
    if let Some(delay) = delay {
        args.extend(["delay".to_owned(), format!("{}us", delay.as_micros())]);
    }
    if let Some(loss) = loss_percent {
        args.extend(["loss".to_owned(), format!("{loss}%")]);
    }
    Ok(args)
}

fn lacks_netem(error: &DockerError) -> bool {
    let text = error.to_string();
    NO_NETEM.iter().any(|s| text.contains(s))
}

/// `modprobe sch_netem` in the node; if that fails too, an error that says the kernel lacks netem.
async fn load_module(docker: &Docker, node: &str) -> Result<(), DockerError> {
    let Err(modprobe) = docker.exec(node, &["modprobe", "sch_netem"]).await else {
        return Ok(());
    };
    let message = format!(
        "the host kernel has no netem qdisc (sch_netem): `tc qdisc replace dev {DEVICE} root \
         netem …` reported an unknown qdisc, and loading the module failed: {}",
        modprobe.message()
    );
    Err(
        DockerError::new(DockerErrorKind::NetemUnavailable, Some(node), message).with_fix(
            "load it on the host (`sudo modprobe sch_netem`; Debian/Ubuntu ship it in \
         linux-modules-extra or the stock kernel), or run on a kernel built with \
         CONFIG_NET_SCH_NETEM",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_and_loss_become_tc_arguments() {
        let args = tc_args("n", Some(Duration::from_millis(100)), Some(2.5)).unwrap();
        assert_eq!(
            args.join(" "),
            "tc qdisc replace dev eth0 root netem delay 100000us loss 2.5%"
        );
    }

    #[test]
    fn netem_needs_something_to_do_and_a_sane_loss() {
        assert_eq!(
            tc_args("n", None, None).unwrap_err().kind(),
            DockerErrorKind::InvalidRequest
        );
        assert_eq!(
            tc_args("n", None, Some(120.0)).unwrap_err().kind(),
            DockerErrorKind::InvalidRequest
        );
    }
}
