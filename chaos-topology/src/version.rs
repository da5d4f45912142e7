use std::fmt;
use std::str::FromStr;

/// A Kubernetes version as a test writes it: a minor (`1.29`) or a pinned patch (`1.29.14`).
///
/// A leading `v` is accepted and dropped, so `"v1.29.14"` and `"1.29.14"` are the same version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// The minor of Kubernetes 1.x: `29` for 1.29.
    pub minor: u32,
    /// The pinned patch, if one was written: `Some(14)` for 1.29.14.
    pub patch: Option<u32>,
}

/// Why a version string is not a Kubernetes version.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a Kubernetes version: {reason}; write it as \"1.29\" or \"1.29.14\"")]
pub struct VersionError {
    /// The string as written.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| VersionError {
            input: input.to_owned(),
            reason,
        };
        let text = input.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        if text.is_empty() {
            return Err(err("it is empty"));
        }
        let parts: Vec<&str> = text.split('.').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(err("expected MAJOR.MINOR or MAJOR.MINOR.PATCH"));
        }
        let number = |part: &str| -> Result<u32, VersionError> {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("each part must be a number"));
            }
            part.parse().map_err(|_| err("a part is too large"))
        };
        if number(parts[0])? != 1 {
            return Err(err("the major version of Kubernetes is 1"));
        }
        let minor = number(parts[1])?;
        let patch = parts.get(2).map(|p| number(p)).transpose()?;
        Ok(Version { minor, patch })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(patch) => write!(f, "1.{}.{}", self.minor, patch),
            None => write!(f, "1.{}", self.minor),
        }
    }
}

impl Version {
    /// Kubernetes 1.`minor`, no patch pinned.
    pub const fn minor(minor: u32) -> Self {
        Version { minor, patch: None }
    }

    /// The full version a node of this version reports, e.g. `v1.28.15` for `1.28`.
    ///
    /// A pinned patch is kept; a bare minor becomes the newest patch that kind publishes node
    /// images for, or `.0` for a minor it never did.
    pub fn kubelet_version(&self) -> String {
        let patch = self
            .patch
            .or_else(|| newest_known_patch(self.minor))
            .unwrap_or(0);
        format!("v1.{}.{}", self.minor, patch)
    }
}

/// The newest patch of a minor for which a `kindest/node` image was published (kind v0.25 to v0.33).
pub fn newest_known_patch(minor: u32) -> Option<u32> {
    const NEWEST: &[(u32, u32)] = &[
        (26, 15),
        (27, 16),
        (28, 15),
        (29, 14),
        (30, 13),
        (31, 14),
        (32, 11),
        (33, 12),
        (34, 11),
        (35, 8),
        (36, 4),
        (37, 0),
    ];
    NEWEST.iter().find(|(m, _)| *m == minor).map(|(_, p)| *p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_minor_patch_and_leading_v() {
        assert_eq!(
            "1.29".parse(),
            Ok(Version {
                minor: 29,
                patch: None
            })
        );
        assert_eq!(
            "1.29.14".parse(),
            Ok(Version {
                minor: 29,
                patch: Some(14)
            })
        );
        assert_eq!("v1.29.14".parse::<Version>(), "1.29.14".parse());
    }

    #[test]
    fn rejects_what_is_not_a_version() {
        for bad in [
            "", "1", "2.29", "1.x", "1.29.", "1.29.1.2", "latest", "1.-2",
        ] {
            let err = bad.parse::<Version>().unwrap_err();
            assert!(
                err.to_string().contains("is not a Kubernetes version"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn kubelet_version_resolves_a_minor_to_its_newest_kind_patch() {
        assert_eq!(Version::minor(28).kubelet_version(), "v1.28.15");
        assert_eq!(
            "1.29.3".parse::<Version>().unwrap().kubelet_version(),
            "v1.29.3"
        );
        assert_eq!(Version::minor(12).kubelet_version(), "v1.12.0");
    }
}
