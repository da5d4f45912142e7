//! `journalctl` and `crictl images`: what `kind export logs` runs on every node
//! (kind `pkg/cluster/internal/providers/docker/provider.go` CollectLogs: `journalctl --no-pager`,
//! `journalctl --no-pager -u kubelet.service`, `-u containerd.service`, `crictl images`). The
//! stand-in's units log to `/var/log/<unit>.log`, so the journal of a unit is that file; there is
//! no container runtime, so no images and no containerd entries.

use crate::paths::{Paths, UNITS};

/// `journalctl --no-pager [-u UNIT[.service]]`: the unit's log, or every unit's.
pub fn journalctl(paths: &Paths, args: &[String]) -> anyhow::Result<String> {
    let mut unit = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--no-pager" => {}
            "-u" | "--unit" => unit = rest.next().map(|u| u.trim_end_matches(".service")),
            other => {
                return crate::unsupported(format!(
                    "journalctl {other}: only --no-pager and -u UNIT"
                ));
            }
        }
    }
    let units: Vec<&str> = match unit {
        Some(unit) if UNITS.contains(&unit) => vec![unit],
        // No such unit here (containerd): as journalctl says for a unit without entries.
        Some(_) => return Ok("-- No entries --\n".to_owned()),
        None => UNITS.to_vec(),
    };
    let mut out = String::new();
    for unit in units {
        if let Ok(text) = std::fs::read_to_string(paths.unit_log(unit)) {
            out.push_str(&text);
        }
    }
    if out.is_empty() {
        out.push_str("-- No entries --\n");
    }
    Ok(out)
}

/// `crictl images`: the header of an empty list (pods are not containers here).
pub fn crictl(args: &[String]) -> anyhow::Result<String> {
    match args {
        [images] if images == "images" => {
            Ok("IMAGE               TAG                 IMAGE ID            SIZE\n".to_owned())
        }
        _ => crate::unsupported(format!(
            "crictl {}: only `crictl images` (there is no container runtime)",
            args.join(" ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_units_journal_is_its_log_file_and_containerd_has_none() {
        let dir = std::env::temp_dir().join(format!("standin-logs-{}", std::process::id()));
        let paths = Paths::new(&dir);
        std::fs::create_dir_all(paths.unit_log("kubelet").parent().unwrap()).unwrap();
        std::fs::write(paths.unit_log("kubelet"), "kubelet: heartbeat\n").unwrap();
        std::fs::write(paths.unit_log("kube-apiserver"), "api: serving\n").unwrap();
        let kubelet = journalctl(&paths, &strings(&["--no-pager", "-u", "kubelet.service"]));
        assert_eq!(kubelet.unwrap(), "kubelet: heartbeat\n");
        let containerd = journalctl(
            &paths,
            &strings(&["--no-pager", "-u", "containerd.service"]),
        );
        assert_eq!(containerd.unwrap(), "-- No entries --\n");
        let all = journalctl(&paths, &strings(&["--no-pager"])).unwrap();
        assert!(
            all.contains("heartbeat") && all.contains("serving"),
            "{all}"
        );
        assert!(journalctl(&paths, &strings(&["-f"])).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn crictl_lists_no_images_and_refuses_the_rest() {
        assert!(crictl(&strings(&["images"])).unwrap().starts_with("IMAGE"));
        assert!(crictl(&strings(&["ps"])).is_err());
    }
}
