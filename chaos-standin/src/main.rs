//! `chaos-node-agent`: the multi-call binary of the kind stand-in images. It runs as the role
//! named by the basename of `argv[0]` (its symlinks: `entrypoint`, `systemctl`, `kubeadm`,
//! `kubectl`, `kubelet`, `kube-apiserver`, `envoy`, `journalctl`, `crictl`), or by its first argument
//! (`chaos-node-agent kubeadm init …`).

use std::process::ExitCode;

use chaos_standin::paths::Paths;
use chaos_standin::{ROLES, apiserver, entrypoint, envoy, kubeadm, kubectl, kubelet, systemctl};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let called = args
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .unwrap_or_default();
    let role = if ROLES.contains(&called.as_str()) {
        args.remove(0);
        called
    } else if args.len() > 1 && ROLES.contains(&args[1].as_str()) {
        args.drain(..2).nth(1).unwrap_or_default()
    } else {
        eprintln!(
            "chaos-node-agent: call me as one of {} (a symlink, or the first argument); got {called:?} {:?}",
            ROLES.join(", "),
            args.get(1..).unwrap_or_default()
        );
        return ExitCode::from(2);
    };
    let paths = Paths::from_env();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{role}: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<u8> = runtime.block_on(async {
        match role.as_str() {
            // kindest/node's ENTRYPOINT passes `/sbin/init` on; nothing else is expected.
            "entrypoint" if args.iter().all(|a| a == "/sbin/init") => {
                entrypoint::run(&paths).await.map(|()| 0)
            }
            "entrypoint" => chaos_standin::unsupported(format!(
                "entrypoint arguments ({}): PID 1 only supervises kubelet and kube-apiserver",
                args.join(" ")
            )),
            "systemctl" => {
                let command = systemctl::parse(&args)?;
                let outcome = systemctl::run(&paths, &command).await?;
                print!("{}", outcome.stdout);
                eprint!("{}", outcome.stderr);
                Ok(outcome.code as u8)
            }
            "kubeadm" => kubeadm::main(&paths, &args).await.map(|()| 0),
            "kubectl" => {
                let command = kubectl::parse(&args)?;
                let out = kubectl::run(&paths, &command, &mut std::io::stdin()).await?;
                print!("{out}");
                Ok(0)
            }
            "kubelet" => {
                if !args.is_empty() {
                    return chaos_standin::unsupported(format!(
                        "kubelet flags ({}): the unit reads what kubeadm wrote",
                        args.join(" ")
                    ));
                }
                kubelet::run_unit(&paths).await.map(|()| 0)
            }
            "kube-apiserver" => {
                if !args.is_empty() {
                    return chaos_standin::unsupported(format!(
                        "kube-apiserver flags ({}): the unit reads what kubeadm wrote",
                        args.join(" ")
                    ));
                }
                apiserver::run(&paths).await.map(|()| 0)
            }
            "envoy" => {
                let bootstrap = envoy::parse_args(&args)?;
                envoy::run(&bootstrap).await.map(|()| 0)
            }
            "journalctl" => {
                print!("{}", chaos_standin::logs::journalctl(&paths, &args)?);
                Ok(0)
            }
            "crictl" => {
                print!("{}", chaos_standin::logs::crictl(&args)?);
                Ok(0)
            }
            other => unreachable!("{other} is in ROLES"),
        }
    });
    // Don't wait for blocking reads (kubectl's stdin thread) at shutdown.
    runtime.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("{role}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
