use std::time::Duration;

use chaos_runtime::k8s_openapi::api::core::v1::{Node as NodeObject, Pod};
use chaos_runtime::k8s_openapi::api::policy::v1::PodDisruptionBudget;
use chaos_runtime::kube::Api;
use chaos_runtime::kube::api::{DeleteParams, ListParams};
use chaos_runtime::kube::runtime::watcher;
use chaos_runtime::prelude::*;

/// How long a fault's effect may take to show through the API. On the sim, about a second; on
/// kind, a NotReady node takes the grace period (16 s, 50 s in HA:
/// `chaos-runtime/src/provider/kind/config.rs`) and an eviction the default toleration after it
/// (30 s, same file), plus a busy machine's slack.
const WAIT: Duration = Duration::from_secs(90);

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: 'registry.k8s.io/pause:3.10'}]}
";

async fn deploy_web(cluster: &Cluster) -> anyhow::Result<()> {
    cluster.apply(WEB).await?;
    cluster
        .wait_for_deployment_available("web", 3, WAIT)
        .await?;
    Ok(())
}

async fn unschedulable(cluster: &Cluster, node: &str) -> anyhow::Result<bool> {
    let object = Api::<NodeObject>::all(cluster.client()).get(node).await?;
    Ok(object.spec.and_then(|s| s.unschedulable).unwrap_or(false))
}

async fn pods_on(cluster: &Cluster, node: &str) -> anyhow::Result<Vec<String>> {
    let pods: Api<Pod> = Api::namespaced(cluster.client(), cluster.namespace());
    let list = pods
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect())
}

#[chaos_test(masters = 1, workers = 3)]
async fn stop_takes_a_node_down_and_start_brings_it_back(cluster: &Cluster) -> anyhow::Result<()> {
    deploy_web(cluster).await?;
    let worker = cluster.workers()[0];
    let probe = cluster.always_available("web", 1);
    let _stopped = worker.stop().await?;
    cluster
        .wait_for_node_ready(worker.name(), false, WAIT)
        .await?;
    // Its pods are evicted after their toleration and come back on the other workers. On a
    // real cluster an evicted pod on a node that is down stays Terminating (its kubelet cannot
    // confirm), so "being deleted" is what eviction means here.
    let pods: Api<Pod> = Api::namespaced(cluster.client(), cluster.namespace());
    let on_worker = watcher::Config::default().fields(&format!("spec.nodeName={}", worker.name()));
    cluster
        .wait_until(
            pods,
            on_worker,
            "every pod on the stopped node evicted",
            WAIT,
            |found: &[Pod]| {
                let staying = found
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .count();
                match staying {
                    0 => Ok(()),
                    n => Err(format!("{n} pods on it not evicted")),
                }
            },
        )
        .await?;
    cluster
        .wait_for_deployment_available("web", 3, WAIT)
        .await?;
    worker.start().await?;
    cluster
        .wait_for_node_ready(worker.name(), true, WAIT)
        .await?;
    probe.finish().await?;
    Ok(())
}

#[chaos_test(masters = 1, workers = 3)]
async fn kill_is_undone_when_its_handle_is_dropped(cluster: &Cluster) -> anyhow::Result<()> {
    let worker = cluster.workers()[1];
    {
        let killed = worker.kill().await?;
        assert_eq!(killed.what(), format!("kill {}", worker.name()));
        cluster
            .wait_for_node_ready(worker.name(), false, WAIT)
            .await?;
    }
    cluster
        .wait_for_node_ready(worker.name(), true, WAIT)
        .await?;
    Ok(())
}

#[chaos_test(masters = 1, workers = 3)]
async fn pause_and_kubelet_stop_are_undone(cluster: &Cluster) -> anyhow::Result<()> {
    let (a, b) = (cluster.workers()[0], cluster.workers()[1]);
    let _paused = a.pause().await?;
    let kubelet = b.kubelet_stop().await?;
    cluster.wait_for_node_ready(a.name(), false, WAIT).await?;
    cluster.wait_for_node_ready(b.name(), false, WAIT).await?;
    a.unpause().await?;
    kubelet.undo().await?;
    cluster.wait_for_nodes_ready(WAIT).await?;
    Ok(())
}

#[chaos_test(masters = 1, workers = 3)]
async fn cordon_keeps_new_pods_off_and_its_undo_uncordons(cluster: &Cluster) -> anyhow::Result<()> {
    let worker = cluster.workers()[2];
    let cordoned = worker.cordon().await?;
    assert!(unschedulable(cluster, worker.name()).await?);
    deploy_web(cluster).await?;
    assert!(
        pods_on(cluster, worker.name()).await?.is_empty(),
        "a cordoned node gets no pods"
    );
    cordoned.undo().await?;
    assert!(!unschedulable(cluster, worker.name()).await?);
    Ok(())
}

#[chaos_test(masters = 1, workers = 3)]
async fn drain_honours_a_disruption_budget_then_evicts(cluster: &Cluster) -> anyhow::Result<()> {
    deploy_web(cluster).await?;
    let budget = |spec: &str| {
        format!(
            "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {{name: web}}\nspec: {{{spec}, selector: {{matchLabels: {{app: web}}}}}}\n"
        )
    };
    cluster.apply(&budget("minAvailable: 3")).await?;
    let worker = cluster.workers()[0];
    let refused = worker
        .drain(Duration::from_secs(2))
        .await
        .err()
        .expect("the budget refuses");
    let message = format!("{refused:#}");
    assert!(
        message.contains("a PodDisruptionBudget still refuses to evict"),
        "{message}"
    );
    worker.uncordon().await?;

    // A new budget (the sim's server-side apply merges, so replace rather than re-apply).
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(cluster.client(), cluster.namespace());
    budgets.delete("web", &DeleteParams::default()).await?;
    cluster.apply(&budget("maxUnavailable: 1")).await?;
    let drained = worker.drain(Duration::from_secs(10)).await?;
    assert!(pods_on(cluster, worker.name()).await?.is_empty(), "drained");
    assert!(unschedulable(cluster, worker.name()).await?);
    cluster
        .wait_for_deployment_available("web", 3, WAIT)
        .await?;
    drained.undo().await?;
    assert!(!unschedulable(cluster, worker.name()).await?);
    Ok(())
}

#[chaos_test(masters = 1, workers = 3)]
async fn partition_cuts_the_minority_side_off(cluster: &Cluster) -> anyhow::Result<()> {
    let (master, worker) = (cluster.masters()[0], cluster.workers()[0]);
    let others: Vec<&Node> = cluster.workers()[1..].to_vec();
    let cut = cluster.partition(&[master], &[worker]).await?;
    cluster
        .wait_for_node_ready(worker.name(), false, WAIT)
        .await?;
    for node in &others {
        cluster.wait_for_node_ready(node.name(), true, WAIT).await?;
    }
    cut.undo().await?;
    cluster.wait_for_nodes_ready(WAIT).await?;
    Ok(())
}

#[chaos_test(masters = 1, workers = 3)]
async fn a_node_partitioned_from_the_rest_is_cut_off(cluster: &Cluster) -> anyhow::Result<()> {
    let worker = cluster.workers()[2];
    let rest: Vec<&Node> = cluster
        .nodes()
        .iter()
        .filter(|n| n.name() != worker.name())
        .collect();
    let cut = worker.partition(&rest).await?;
    assert_eq!(
        cut.what(),
        format!(
            "partition [{}] | [{}]",
            worker.name(),
            rest.iter().map(|n| n.name()).collect::<Vec<_>>().join(", ")
        )
    );
    cluster
        .wait_for_node_ready(worker.name(), false, WAIT)
        .await?;
    drop(cut); // Undone in the background when the handle goes.
    cluster.wait_for_nodes_ready(WAIT).await?;
    Ok(())
}

/// Every node a partition cut off comes back with its undo, not only the first.
#[chaos_test(masters = 1, workers = 3)]
async fn undoing_a_partition_brings_back_every_node_it_cut_off(
    cluster: &Cluster,
) -> anyhow::Result<()> {
    let master = cluster.masters()[0];
    let workers = &cluster.workers()[..2];
    let cut = cluster.partition(&[master], workers).await?;
    for worker in workers {
        cluster
            .wait_for_node_ready(worker.name(), false, WAIT)
            .await?;
    }
    cut.undo().await?;
    for worker in workers {
        cluster
            .wait_for_node_ready(worker.name(), true, WAIT)
            .await?;
    }
    Ok(())
}

/// Two isolations, each undone by its own handle: each node comes back with its own undo.
#[chaos_test(masters = 1, workers = 3)]
async fn undoing_two_isolations_brings_back_both_nodes(cluster: &Cluster) -> anyhow::Result<()> {
    let (first, second) = (cluster.workers()[0], cluster.workers()[1]);
    let isolated = [first.isolate().await?, second.isolate().await?];
    for node in [first, second] {
        cluster
            .wait_for_node_ready(node.name(), false, WAIT)
            .await?;
    }
    let [one, two] = isolated;
    one.undo().await?;
    cluster
        .wait_for_node_ready(first.name(), true, WAIT)
        .await?;
    let status = |node: &str| {
        let nodes: Api<NodeObject> = Api::all(cluster.client());
        let node = node.to_owned();
        async move {
            let object = nodes.get(&node).await?;
            anyhow::Ok(chaos_runtime::conditions::node_ready_status(&object).to_owned())
        }
    };
    assert_ne!(
        status(second.name()).await?,
        "True",
        "the other isolation is still in effect"
    );
    two.undo().await?;
    cluster
        .wait_for_node_ready(second.name(), true, WAIT)
        .await?;
    Ok(())
}

/// A node under two faults stays down until both end, as on kind: starting a stopped node does
/// not end its isolation.
#[chaos_test(masters = 1, workers = 3)]
async fn a_node_stays_down_while_any_of_its_faults_lasts(cluster: &Cluster) -> anyhow::Result<()> {
    let worker = cluster.workers()[0];
    let isolated = worker.isolate().await?;
    let _stopped = worker.stop().await?;
    cluster
        .wait_for_node_ready(worker.name(), false, WAIT)
        .await?;
    worker.start().await?;
    let still_down = cluster
        .wait_for_node_ready(worker.name(), true, Duration::from_secs(2))
        .await;
    assert!(
        still_down.is_err(),
        "started, but still isolated: the node must stay NotReady"
    );
    isolated.undo().await?;
    cluster
        .wait_for_node_ready(worker.name(), true, WAIT)
        .await?;
    Ok(())
}

/// The monkey takes any node fault but a partition, and refuses that clearly.
#[chaos_test(masters = 1, workers = 1)]
async fn the_monkey_refuses_a_partition(cluster: &Cluster) -> anyhow::Result<()> {
    let monkey = cluster.monkey(MonkeyPlan {
        duration: Duration::from_secs(1),
        faults: vec![NodeFault::Partition {
            a: vec![],
            b: vec![],
        }],
        ..MonkeyPlan::default()
    });
    let err = monkey.finish().await.expect_err("a partition is refused");
    assert!(
        err.to_string().contains("use NodeFault::Isolate"),
        "{err:#}"
    );
    Ok(())
}

#[chaos_test(masters = 1, workers = 3)]
async fn pod_kill_replaces_the_pods(cluster: &Cluster) -> anyhow::Result<()> {
    deploy_web(cluster).await?;
    let killed = cluster.kill_pods("app=web").await?;
    assert_eq!(killed.len(), 3, "{killed:?}");
    cluster.wait_for_pods_running("app=web", 3, WAIT).await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), cluster.namespace());
    let now: Vec<String> = pods
        .list(&ListParams::default().labels("app=web"))
        .await?
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert!(
        now.iter().all(|p| !killed.contains(p)),
        "new pods: {now:?}, killed: {killed:?}"
    );
    Ok(())
}

#[chaos_test(masters = 1, workers = 3)]
async fn y_a_kept_fault_is_left_to_the_heal(cluster: &Cluster) -> anyhow::Result<()> {
    let worker = cluster.workers()[0];
    worker.isolate().await?.keep();
    cluster
        .wait_for_node_ready(worker.name(), false, WAIT)
        .await?;
    Ok(())
}

// Runs after the test above on the same cluster: the heal undid the kept isolation.
#[chaos_test(masters = 1, workers = 3)]
async fn z_after_a_kept_fault_the_next_test_gets_a_whole_cluster(
    cluster: &Cluster,
) -> anyhow::Result<()> {
    let nodes: Api<NodeObject> = Api::all(cluster.client());
    for node in nodes.list(&ListParams::default()).await?.items {
        let ready = chaos_runtime::conditions::node_ready_status(&node).to_owned();
        assert_eq!(ready, "True", "{:?}", node.metadata.name);
    }
    Ok(())
}

/// Delay and loss are recorded; on kind they act on the node's `eth0` (`tc … netem`), on the sim
/// the timeline says there is no data plane to act on. Either way the node stays Ready. On kind,
/// a host kernel without `sch_netem` (as on some CI machines) must be named, with the fix, in the
/// fault's error.
#[chaos_test(masters = 1, workers = 3)]
async fn network_faults_act_or_name_what_the_host_lacks(cluster: &Cluster) -> anyhow::Result<()> {
    let worker = cluster.workers()[0];
    let delay = match worker.network_delay(Duration::from_millis(100)).await {
        Ok(delay) => delay,
        Err(err) if PROVIDER == "kind" && format!("{err:#}").contains("has no netem qdisc") => {
            let message = format!("{err:#}");
            assert!(message.contains("modprobe sch_netem"), "{message}");
            println!("netem cannot act on this host: {message}");
            cluster.wait_for_nodes_ready(WAIT).await?;
            return Ok(());
        }
        Err(err) => return Err(err),
    };
    let _loss = worker.network_loss(5.0).await?;
    let faults: Vec<String> = cluster
        .timeline()
        .entries()
        .into_iter()
        .map(|e| e.what)
        .filter(|f| f.contains("netem"))
        .collect();
    let on_the_sim = PROVIDER == "sim";
    assert_eq!(faults.len(), 2, "{faults:?}");
    assert!(
        faults.iter().all(|f| f.contains("no data plane") == on_the_sim),
        "on the sim: {on_the_sim}; {faults:?}"
    );
    drop(delay);
    cluster.wait_for_nodes_ready(WAIT).await?;
    Ok(())
}

/// netem values `tc` refuses (loss outside 0–100 %, NaN, infinite; nothing to do at all) are
/// refused on every provider with one line naming the value, before anything is applied: no
/// fault in the timeline, none for the heal to undo.
#[chaos_test(masters = 1, workers = 3)]
async fn netem_values_tc_refuses_are_refused_before_anything_is_applied(
    cluster: &Cluster,
) -> anyhow::Result<()> {
    let worker = cluster.workers()[0];
    for loss in [f64::NAN, f64::INFINITY, -1.0, 100.5] {
        let Err(err) = worker.network_loss(loss).await else {
            anyhow::bail!("a loss of {loss} % was accepted");
        };
        let message = format!("{err:#}");
        assert!(
            message.contains("from 0 to 100") && message.contains(&format!("not {loss}")),
            "{message}"
        );
        assert!(!message.contains('\n'), "one line: {message}");
    }
    let nothing = NodeFault::Netem {
        delay: None,
        loss_percent: None,
    };
    let Err(err) = worker.inject(nothing).await else {
        anyhow::bail!("netem with neither delay nor loss was accepted");
    };
    assert!(format!("{err:#}").contains("a delay, a loss percentage or both"));
    let faults: Vec<String> = cluster
        .timeline()
        .entries()
        .into_iter()
        .filter(|e| e.kind == chaos_runtime::timeline::EntryKind::Fault)
        .map(|e| e.what)
        .collect();
    assert!(faults.is_empty(), "nothing applied: {faults:?}");
    Ok(())
}

#[chaos_test(masters = 3, workers = 1)]
async fn an_ha_control_plane_loses_one_and_keeps_serving(cluster: &Cluster) -> anyhow::Result<()> {
    let lost = cluster.lose_control_plane().await?;
    let master = cluster.masters()[2].name().to_owned();
    assert_eq!(lost.what(), format!("stop {master}"));
    cluster.wait_for_node_ready(&master, false, WAIT).await?;
    let nodes = Api::<NodeObject>::all(cluster.client())
        .list(&ListParams::default())
        .await?;
    assert_eq!(nodes.items.len(), 4, "the API keeps serving");
    lost.undo().await?;
    cluster.wait_for_nodes_ready(WAIT).await?;
    Ok(())
}

#[chaos_test(masters = 1, workers = 1)]
async fn losing_the_only_control_plane_is_refused(cluster: &Cluster) -> anyhow::Result<()> {
    let err = cluster.lose_control_plane().await.err().expect("refused");
    assert!(
        err.to_string()
            .contains("needs an HA cluster: use `masters = 3`"),
        "{err}"
    );
    Ok(())
}

#[chaos_test(masters = 1, workers = 3)]
async fn restart_restarts_the_pods_and_kubelet_start_ends_a_kubelet_stop(
    cluster: &Cluster,
) -> anyhow::Result<()> {
    deploy_web(cluster).await?;
    let worker = cluster.workers()[1];
    let before: Vec<String> = pods_on(cluster, worker.name()).await?;
    anyhow::ensure!(!before.is_empty(), "the app has a pod on {}", worker.name());
    worker.restart().await?;
    // The node's containers died and came back: its pods count a restart.
    let pods: Api<Pod> = Api::namespaced(cluster.client(), cluster.namespace());
    let on_worker = watcher::Config::default().fields(&format!("spec.nodeName={}", worker.name()));
    cluster
        .wait_until(
            pods,
            on_worker,
            "the restarted node's pods restarted",
            WAIT,
            |found: &[Pod]| {
                let restarts: i32 = found
                    .iter()
                    .flat_map(|p| {
                        p.status
                            .iter()
                            .flat_map(|s| s.container_statuses.iter().flatten())
                    })
                    .map(|c| c.restart_count)
                    .sum();
                if restarts > 0 {
                    Ok(())
                } else {
                    Err(format!("{} pods, no restart", found.len()))
                }
            },
        )
        .await?;
    cluster
        .wait_for_node_ready(worker.name(), true, WAIT)
        .await?;

    let _stopped = worker.kubelet_stop().await?;
    cluster
        .wait_for_node_ready(worker.name(), false, WAIT)
        .await?;
    worker.kubelet_start().await?;
    cluster
        .wait_for_node_ready(worker.name(), true, WAIT)
        .await?;
    Ok(())
}
