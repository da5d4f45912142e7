//! Certificates and keys, as kubeadm's `certs` phase lays them out under
//! `/etc/kubernetes/pki` (kind copies the CAs and the service-account keys to the other
//! control planes: `pkg/cluster/internal/create/actions/kubeadminit/init.go`).
//!
//! ECDSA P-256 keys in PKCS#8 PEM, signed with rcgen's ring backend. A CA is re-created as an
//! issuer from its key and its fixed subject (`CN=<name>`), so no certificate parser is needed:
//! the signatures and the authority key identifier only depend on the key and the subject.

use std::net::IpAddr;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::paths::{Paths, read_file, write_file};

/// A certificate authority: its certificate and key, PEM.
#[derive(Clone, Debug)]
pub struct Ca {
    /// The subject's common name.
    pub name: String,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
}

/// A leaf certificate and its key, PEM.
#[derive(Clone, Debug)]
pub struct Leaf {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
}

fn ca_params(name: &str) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ];
    // kubeadm's CAs are valid for ten years.
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    Ok(params)
}

impl Ca {
    /// A new self-signed CA with subject `CN=<name>` (kubeadm: `kubernetes`,
    /// `front-proxy-ca`, `etcd-ca`).
    pub fn generate(name: &str) -> anyhow::Result<Self> {
        let key = KeyPair::generate()?;
        let cert = ca_params(name)?.self_signed(&key)?;
        Ok(Self {
            name: name.to_string(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Reads `<base>.crt` and `<base>.key` under the pki directory; `name` is the CA's common
    /// name, which the stand-in always gives it.
    pub fn load(paths: &Paths, base: &str, name: &str) -> anyhow::Result<Self> {
        Ok(Self {
            name: name.to_string(),
            cert_pem: read_file(&paths.pki(&format!("{base}.crt")))?,
            key_pem: read_file(&paths.pki(&format!("{base}.key")))?,
        })
    }

    /// Writes `<base>.crt` and `<base>.key` under the pki directory.
    pub fn write(&self, paths: &Paths, base: &str) -> anyhow::Result<()> {
        write_file(&paths.pki(&format!("{base}.crt")), &self.cert_pem)?;
        write_file(&paths.pki(&format!("{base}.key")), &self.key_pem)
    }

    fn sign(&self, params: &CertificateParams) -> anyhow::Result<Leaf> {
        let ca_key = KeyPair::from_pem(&self.key_pem).context("reading the CA key")?;
        let issuer = Issuer::new(ca_params(&self.name)?, ca_key);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A serving certificate for kube-apiserver with these subject alternative names (IP
    /// addresses become IP SANs, the rest DNS names), as kubeadm's `certs/apiserver` phase.
    pub fn serving_cert(&self, sans: &[String]) -> anyhow::Result<Leaf> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "kube-apiserver");
        params.distinguished_name = dn;
        params.subject_alt_names = sans
            .iter()
            .map(|san| match san.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName(san.clone().try_into()?)),
            })
            .collect::<anyhow::Result<_>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        self.sign(&params)
    }

    /// A client certificate for `CN=<user>, O=<group>` (kubeadm's admin.conf user is
    /// `kubernetes-admin` in `kubeadm:cluster-admins` from 1.29, a kubelet's
    /// `system:node:<node>` in `system:nodes`).
    pub fn client_cert(&self, user: &str, group: &str) -> anyhow::Result<Leaf> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, user);
        dn.push(DnType::OrganizationName, group);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        self.sign(&params)
    }
}

/// The API server's SANs, as kubeadm's `certs/apiserver` phase makes them: the node name, the
/// `kubernetes` service names, `localhost` and the loopback addresses, the node's own
/// addresses, the controlPlaneEndpoint's host and `apiServer.certSANs`, without repeats.
pub fn apiserver_sans(
    node_name: &str,
    node_ips: &[IpAddr],
    control_plane_endpoint: &str,
    cert_sans: &[String],
) -> Vec<String> {
    let endpoint_host = split_host_port(control_plane_endpoint).0;
    let mut sans: Vec<String> = [
        node_name,
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
        "127.0.0.1",
        "::1",
        // The `kubernetes` Service's ClusterIP in kind's default service subnet.
        "10.96.0.1",
    ]
    .into_iter()
    .map(str::to_string)
    .chain(node_ips.iter().map(IpAddr::to_string))
    .chain([endpoint_host.to_string()])
    .chain(cert_sans.iter().cloned())
    .filter(|s| !s.is_empty())
    .collect();
    let mut seen = std::collections::HashSet::new();
    sans.retain(|s| seen.insert(s.clone()));
    sans
}

/// `host:port` (or `[v6]:port`, or a bare host) split; the port is None when absent.
pub fn split_host_port(endpoint: &str) -> (&str, Option<&str>) {
    if let Some(rest) = endpoint.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => (endpoint, None),
        };
    }
    match endpoint.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (endpoint, None),
    }
}

/// The service-account signing key pair, `sa.key` (PKCS#8 PEM) and `sa.pub` (SPKI PEM).
pub fn write_service_account_keys(paths: &Paths) -> anyhow::Result<()> {
    let key = KeyPair::generate()?;
    write_file(&paths.pki("sa.key"), key.serialize_pem())?;
    write_file(&paths.pki("sa.pub"), key.public_key_pem())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sans_cover_names_addresses_and_the_endpoint() {
        let ips = ["172.18.0.3".parse().unwrap(), "fc00::3".parse().unwrap()];
        let sans = apiserver_sans(
            "chaos-control-plane",
            &ips,
            "chaos-external-load-balancer:6443",
            &[
                "localhost".into(),
                "127.0.0.1".into(),
                "extra.example".into(),
            ],
        );
        for expected in [
            "chaos-control-plane",
            "localhost",
            "127.0.0.1",
            "::1",
            "172.18.0.3",
            "fc00::3",
            "chaos-external-load-balancer",
            "extra.example",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ] {
            assert!(sans.iter().any(|s| s == expected), "{expected} in {sans:?}");
        }
        let localhosts = sans.iter().filter(|s| *s == "localhost").count();
        assert_eq!(localhosts, 1, "no repeats: {sans:?}");
    }

    #[test]
    fn endpoints_split() {
        assert_eq!(
            split_host_port("a-control-plane:6443"),
            ("a-control-plane", Some("6443"))
        );
        assert_eq!(split_host_port("[::1]:6443"), ("::1", Some("6443")));
        assert_eq!(split_host_port("host"), ("host", None));
        assert_eq!(split_host_port("fc00::1"), ("fc00::1", None));
    }

    #[test]
    fn a_reloaded_ca_signs_certificates() {
        let dir = std::env::temp_dir().join(format!("standin-pki-{}", std::process::id()));
        let paths = Paths::new(&dir);
        Ca::generate("kubernetes")
            .unwrap()
            .write(&paths, "ca")
            .unwrap();
        let ca = Ca::load(&paths, "ca", "kubernetes").unwrap();
        let leaf = ca
            .serving_cert(&["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        assert!(leaf.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(leaf.key_pem.contains("PRIVATE KEY"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
