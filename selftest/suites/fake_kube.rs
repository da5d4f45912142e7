//! A kind cluster's API for the fake `kind` of `tests/nextest.rs`: the sim over HTTP on loopback,
//! with the Node objects kind would have registered for the config it was given. Writes its URL
//! to a file once it listens, then serves until it is killed (the fake's `kind delete cluster`),
//! for ten minutes at most, so that a failed test leaves nothing running for long.
//!
//! Usage: `selftest-fake-kube CLUSTER KIND_CONFIG_FILE URL_FILE`.

use std::time::Duration;

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, config, url_file] = args.as_slice() else {
        anyhow::bail!("usage: selftest-fake-kube CLUSTER KIND_CONFIG_FILE URL_FILE");
    };
    let config = std::fs::read_to_string(config).with_context(|| format!("reading {config}"))?;
    let nodes = chaos_runtime::__kind::fake_node_objects(name, &config)?;
    let version = nodes[0]["status"]["nodeInfo"]["kubeletVersion"]
        .as_str()
        .unwrap_or("v1.35.0")
        .to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = chaos_sim::ApiServer::new(&version);
        for node in nodes {
            server
                .create(node)
                .map_err(|err| anyhow::anyhow!("creating a node: {err:?}"))?;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let temp = format!("{url_file}.tmp");
        std::fs::write(&temp, &url)?;
        std::fs::rename(&temp, url_file)?;
        tokio::select! {
            () = server.serve_http(listener) => {}
            () = tokio::time::sleep(Duration::from_secs(600)) => {}
        }
        anyhow::Ok(())
    })
}
