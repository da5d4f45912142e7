//! Kubeconfig files, as kubeadm writes them (`admin.conf`, `kubelet.conf`, the kubeconfig in
//! `kube-public/cluster-info`), and clients made from them.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// How a kubeconfig's user authenticates.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// A client certificate and key, PEM.
    Cert {
        /// The certificate.
        cert_pem: String,
        /// The key.
        key_pem: String,
    },
    /// A bearer token.
    Token(String),
    /// None: the kubeconfig only carries the cluster (cluster-info's).
    None,
}

/// A kubeconfig with one cluster, one user and one context, named as kubeadm names them
/// (`<user>@<cluster>`).
pub fn render(
    cluster: &str,
    server: &str,
    ca_pem: &str,
    user: &str,
    credentials: &Credentials,
) -> String {
    let ca = STANDARD.encode(ca_pem);
    let mut out = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: {cluster}\n"
    );
    match credentials {
        Credentials::None => {
            out.push_str("contexts: []\ncurrent-context: \"\"\npreferences: {}\nusers: []\n");
        }
        credentials => {
            let context = format!("{user}@{cluster}");
            out.push_str(&format!(
                "contexts:\n- context:\n    cluster: {cluster}\n    user: {user}\n  name: {context}\ncurrent-context: {context}\npreferences: {{}}\nusers:\n- name: {user}\n  user:\n"
            ));
            match credentials {
                Credentials::Cert { cert_pem, key_pem } => out.push_str(&format!(
                    "    client-certificate-data: {}\n    client-key-data: {}\n",
                    STANDARD.encode(cert_pem),
                    STANDARD.encode(key_pem)
                )),
                Credentials::Token(token) => out.push_str(&format!("    token: {token}\n")),
                Credentials::None => unreachable!("handled above"),
            }
        }
    }
    out
}

/// The CA (PEM) and server of a kubeconfig's first cluster (for cluster-info).
pub fn cluster_of(kubeconfig: &str) -> anyhow::Result<(String, String)> {
    let config: serde_json::Value =
        serde_saphyr::from_str(kubeconfig).context("parsing a kubeconfig")?;
    let cluster = &config["clusters"][0]["cluster"];
    let ca = cluster["certificate-authority-data"]
        .as_str()
        .context("the kubeconfig's cluster has no certificate-authority-data")?;
    let ca = String::from_utf8(STANDARD.decode(ca.trim())?)?;
    let server = cluster["server"].as_str().unwrap_or_default().to_string();
    Ok((ca, server))
}

/// A client from a kubeconfig file, with `timeout` on connecting, reading and writing (None:
/// kube's defaults), and its server replaced when `server` is given.
pub async fn client(
    path: &Path,
    server: Option<&str>,
    timeout: Option<Duration>,
) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .with_context(|| format!("loading kubeconfig {}", path.display()))?;
    if let Some(server) = server {
        config.cluster_url = server.parse()?;
    }
    if timeout.is_some() {
        config.connect_timeout = timeout;
        config.read_timeout = timeout;
        config.write_timeout = timeout;
    }
    // kube 5 retries 429/503/504 with backoff up to 1000 s (kube-client 5.0.0
    // `client/builder.rs`); a kubelet's next heartbeat is its retry, as on a real node.
    config.default_retry = false;
    Ok(kube::Client::try_from(config)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_info_round_trips() {
        let text = render(
            "chaos",
            "https://chaos-control-plane:6443",
            "PEM",
            "",
            &Credentials::None,
        );
        let (ca, server) = cluster_of(&text).unwrap();
        assert_eq!(ca, "PEM");
        assert_eq!(server, "https://chaos-control-plane:6443");
    }
}
