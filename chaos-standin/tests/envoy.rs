//! The envoy stand-in as kind drives it: started on empty xDS files, then given a listener and
//! a cluster of two endpoints, one alive and one dead.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Writes a file as kind does: a temporary file moved over it.
fn replace(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

async fn ask(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_string(&mut answer))
        .await
        .ok()?
        .ok()?;
    (!answer.is_empty()).then_some(answer)
}

#[tokio::test]
async fn forwards_to_the_live_backend_and_skips_the_dead_one() {
    let dir = std::env::temp_dir().join(format!("standin-envoy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (cds, lds, bootstrap) = (
        dir.join("cds.yaml"),
        dir.join("lds.yaml"),
        dir.join("envoy.yaml"),
    );
    std::fs::write(&cds, "resources: []").unwrap();
    std::fs::write(&lds, "resources: []").unwrap();
    std::fs::write(
        &bootstrap,
        format!(
            "node:\n  cluster: t\n  id: t-external-load-balancer\ndynamic_resources:\n  cds_config:\n    resource_api_version: V3\n    path_config_source:\n      path: {}\n  lds_config:\n    resource_api_version: V3\n    path_config_source:\n      path: {}\n",
            cds.display(),
            lds.display()
        ),
    )
    .unwrap();

    // A live backend that says who it is, and a port nobody listens on.
    let live = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let live_port = live.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = live.accept().await {
            let _ = stream.write_all(b"live").await;
        }
    });
    let dead_port = free_port().await;
    let listen_port = free_port().await;

    let proxy = tokio::spawn(async move { chaos_standin::envoy::run(&bootstrap).await });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!proxy.is_finished(), "envoy runs on empty xDS files");
    assert!(
        ask(listen_port).await.is_none(),
        "no listener before kind writes lds.yaml"
    );

    replace(
        &cds,
        &format!(
            r#"resources:
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: kube_apiservers
  connect_timeout: 0.25s
  type: STRICT_DNS
  lb_policy: ROUND_ROBIN
  health_checks:
  - timeout: 1s
    interval: 0.2s
    unhealthy_threshold: 2
    healthy_threshold: 1
  load_assignment:
    cluster_name: kube_apiservers
    endpoints:
    - lb_endpoints:
      - endpoint:
          address:
            socket_address:
              address: localhost
              port_value: {dead_port}
      - endpoint:
          address:
            socket_address:
              address: 127.0.0.1
              port_value: {live_port}
"#
        ),
    );
    replace(
        &lds,
        &format!(
            r#"resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: listener_apiserver
  address:
    socket_address:
      address: "127.0.0.1"
      port_value: {listen_port}
  filter_chains:
  - filters:
    - name: envoy.filters.network.tcp_proxy
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
        stat_prefix: ingress_tcp
        cluster: kube_apiservers
"#
        ),
    );

    // Once the checks ran, every connection lands on the live backend.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while ask(listen_port).await.as_deref() != Some("live") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listener never forwarded to the live backend"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..6 {
        assert_eq!(
            ask(listen_port).await.as_deref(),
            Some("live"),
            "round robin skips the dead endpoint"
        );
    }
    proxy.abort();
    let _ = std::fs::remove_dir_all(&dir);
}
