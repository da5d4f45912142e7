//! Node images: which `kindest/node` image a node of a given Kubernetes version runs.
//!
//! kind supports a node image with the kind release it was built for, "and best effort with other
//! releases" (kind's `site/content/docs/design/node-image.md`), and tags are re-pushed, so every
//! image here is pinned by digest. A version resolves to an image of the installed release when it
//! ships one, else to the newest image of that version built for another release, flagged
//! best-effort. A user can pin any image with `CHAOS_KIND_IMAGES`.

use std::collections::BTreeSet;
use std::env::VarError;
use std::fmt;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use chaos_topology::Version;

use crate::command::Cmd;
use crate::provider::kind::config::{self, KubeadmApi};

/// The variable that pins node images: `1.29=kindest/node:v1.29.2@sha256:...,1.30=...`.
pub const PINS_VAR: &str = "CHAOS_KIND_IMAGES";

const PINS_FORMAT: &str = "write comma-separated VERSION=IMAGE pairs, e.g. \
     CHAOS_KIND_IMAGES=1.29=kindest/node:v1.29.14@sha256:<digest>";

/// What to do when kind is missing or too old; the one hint for the runtime and `cargo chaos`.
pub(crate) const INSTALL_HINT: &str = "run scripts/install-kind.sh (or install kind from \
     https://kind.sigs.k8s.io), or set CHAOS_KIND to its path";

/// kubeadm 1.37 and later reject the v1beta3 config that kind before v0.32 writes for every node.
const FIRST_MINOR_WITHOUT_V1BETA3: u32 = 37;

/// A kind release, as `kind version` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KindRelease {
    /// `0` in `v0.33.1`.
    pub major: u32,
    /// `33` in `v0.33.1`.
    pub minor: u32,
    /// `1` in `v0.33.1`.
    pub patch: u32,
}

impl fmt::Display for KindRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl KindRelease {
    /// The release `v{major}.{minor}.{patch}`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        KindRelease {
            major,
            minor,
            patch,
        }
    }

    /// The newest release whose images this build knows.
    pub fn newest_known() -> KindRelease {
        RELEASES[0].kind
    }

    /// A line for the user when this build does not know the images of this release: its images
    /// are then those of the newest older release the table has (all best effort), or none.
    pub fn warning(self) -> Option<String> {
        let (oldest, newest) = (RELEASES[RELEASES.len() - 1].kind, RELEASES[0].kind);
        match shipping_release(self) {
            Some(release) if release.kind == self => None,
            Some(release) => Some(format!(
                "kind {self} is not in this build's image table (kind {oldest} to {newest}): using \
                 the images of kind {}, which kind {self} supports only on a best-effort basis; \
                 pin images built for kind {self} with {PINS_VAR}",
                release.kind
            )),
            None => Some(format!(
                "kind {self} is older than this build's image table (kind {oldest} to {newest}): \
                 every image is best effort; upgrade kind ({INSTALL_HINT}) or pin images with \
                 {PINS_VAR}"
            )),
        }
    }
}

/// The release in `kind version` (`kind v0.33.0 go1.27.2 linux/amd64`) or `kind --version`
/// (`kind version 0.33.0`) output. A pre-release suffix (`v0.33.0-alpha`) is dropped.
pub fn parse_kind_version(text: &str) -> Option<KindRelease> {
    let mut words = text.split_whitespace();
    if words.next()? != "kind" {
        return None;
    }
    let word = match words.next()? {
        "version" => words.next()?,
        word => word,
    };
    let number = word.strip_prefix('v').unwrap_or(word);
    let core = number.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|part| part.parse::<u32>().ok());
    let release = KindRelease::new(parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(release)
}

/// The release of the `kind` on PATH.
pub async fn installed_release() -> anyhow::Result<KindRelease> {
    let output = Cmd::new(super::kind_binary())
        .arg("version")
        .timeout(Duration::from_secs(10))
        .install_hint(INSTALL_HINT)
        .run()
        .await?;
    parse_kind_version(&output.stdout).with_context(|| {
        format!(
            "cannot read a kind release from `kind version`, which printed {:?}; {INSTALL_HINT}",
            output.stdout.trim()
        )
    })
}

/// The image a node runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeImage {
    /// What goes into the kind config: `kindest/node:v1.29.14@sha256:...`.
    pub image: String,
    /// What the node's kubelet reports: `v1.29.14`.
    pub kubelet_version: String,
    /// The kind release the image was built for; `None` for an image the user pinned.
    pub release: Option<KindRelease>,
    /// Built for another kind release than the installed one.
    pub best_effort: bool,
}

impl NodeImage {
    /// The one-line warning for a best-effort image.
    pub fn warning(&self) -> Option<String> {
        let release = self.release.filter(|_| self.best_effort)?;
        Some(format!(
            "{} was built for kind {release}; kind supports it with other releases only on a \
             best-effort basis (kind {release} supports it fully)",
            self.name()
        ))
    }

    /// The image without its digest: `kindest/node:v1.29.14`.
    pub fn name(&self) -> &str {
        self.image.split('@').next().unwrap_or(&self.image)
    }
}

/// Why a version has no image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// Neither the table nor a pin has an image of this version.
    Unknown {
        /// The version asked for.
        version: Version,
        /// The kind release that runs it.
        installed: KindRelease,
    },
    /// The only images are of a Kubernetes whose kubeadm rejects what this kind writes.
    KindTooOld {
        /// The version asked for.
        version: Version,
        /// The kind release that runs it.
        installed: KindRelease,
    },
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ResolveError::Unknown { version, installed } => {
                write!(f, "no kind node image for Kubernetes {version}")?;
                if version.patch.is_some() {
                    let minor = Version::minor(version.minor);
                    let known: BTreeSet<Version> = table()
                        .filter(|image| image.matches(minor))
                        .map(|image| image.version)
                        .collect();
                    let patches = versions(known.into_iter().rev());
                    if !patches.is_empty() {
                        write!(f, " (images of {minor}: {patches})")?;
                    }
                }
                let (shipped, extras) = catalog(installed);
                let list = |images: &[NodeImage]| match images.is_empty() {
                    true => "none".to_owned(),
                    false => versions(
                        images
                            .iter()
                            .map(|i| i.kubelet_version.trim_start_matches('v')),
                    ),
                };
                write!(
                    f,
                    ": kind {installed} ships {}; best effort (built for other kind releases): {}; \
                     or pin an image: {PINS_VAR}={version}=kindest/node:<tag>@sha256:<digest>",
                    list(&shipped),
                    list(&extras)
                )
            }
            ResolveError::KindTooOld { version, installed } => write!(
                f,
                "Kubernetes {version} needs kind {} or newer: kind {installed} writes kubeadm \
                 v1beta3 configs, which kubeadm 1.{FIRST_MINOR_WITHOUT_V1BETA3} and later reject; \
                 upgrade kind ({INSTALL_HINT}) or use Kubernetes 1.{} or older",
                config::FIRST_V1BETA4_RELEASE,
                FIRST_MINOR_WITHOUT_V1BETA3 - 1
            ),
        }
    }
}

impl std::error::Error for ResolveError {}

/// A Kubernetes version that no node image of kind's (in this build's table, any release) is
/// of, and that no `CHAOS_KIND_IMAGES` pin stands for. Whatever the provider, the run's input is
/// then wrong: the sim refuses it too, so that a suite green on the sim can run on kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownVersion {
    /// The version asked for.
    pub version: Version,
}

impl fmt::Display for UnknownVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = self.version;
        write!(f, "Kubernetes {version} has no kind node image")?;
        let minor = Version::minor(version.minor);
        let patches: BTreeSet<Version> = table()
            .filter(|image| image.matches(minor))
            .map(|image| image.version)
            .collect();
        if patches.is_empty() {
            let minors: BTreeSet<u32> = table().map(|image| image.version.minor).collect();
            let minors = versions(minors.into_iter().rev().map(Version::minor));
            write!(
                f,
                "; kind has images of {minors} (`cargo chaos versions` lists their patches)"
            )?;
        } else {
            let patches = versions(patches.into_iter().rev());
            write!(
                f,
                "; the images of {minor} are {patches} (write {minor} for the newest)"
            )?;
        }
        write!(
            f,
            ", or pin one: {PINS_VAR}={version}=kindest/node:<tag>@sha256:<digest>"
        )
    }
}

impl std::error::Error for UnknownVersion {}

/// Whether some node image is of `version`: one of the table (built for any kind release), or a
/// pin. Independent of the installed kind, so that every provider and host give one answer.
pub fn check_known(version: Version, pins: &ImagePins) -> Result<(), UnknownVersion> {
    match pins.get(version).is_some() || table().any(|image| image.matches(version)) {
        true => Ok(()),
        false => Err(UnknownVersion { version }),
    }
}

fn versions<T: fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
}

/// The image for a node of `version`: a pin for it; else the installed release's image of that
/// minor (or exact patch); else the newest such image built for another release, best effort.
pub fn resolve(
    version: Version,
    installed: KindRelease,
    pins: &ImagePins,
) -> Result<NodeImage, ResolveError> {
    if let Some(pinned) = pins.get(version) {
        return Ok(pinned.clone());
    }
    let image =
        newest_image(version, installed).ok_or(ResolveError::Unknown { version, installed })?;
    if image.version.minor >= FIRST_MINOR_WITHOUT_V1BETA3
        && config::kubeadm_api(installed, image.version.minor) != KubeadmApi::V1beta4
    {
        return Err(ResolveError::KindTooOld { version, installed });
    }
    Ok(image.node_image(installed))
}

/// The images the installed release ships, newest first, and the newest best-effort image of
/// every other minor this build knows.
pub fn catalog(installed: KindRelease) -> (Vec<NodeImage>, Vec<NodeImage>) {
    let mut shipped: Vec<TableImage> = shipping_release(installed)
        .into_iter()
        .flat_map(images_of)
        .collect();
    shipped.sort_by_key(|image| std::cmp::Reverse(image.version));
    let shipped_minors: BTreeSet<u32> = shipped.iter().map(|image| image.version.minor).collect();
    let minors: BTreeSet<u32> = table().map(|image| image.version.minor).collect();
    let extras = minors
        .into_iter()
        .rev()
        .filter(|minor| !shipped_minors.contains(minor))
        .filter_map(|minor| resolve(Version::minor(minor), installed, &ImagePins::default()).ok())
        .collect();
    let shipped = shipped
        .into_iter()
        .map(|image| image.node_image(installed))
        .collect();
    (shipped, extras)
}

/// Node images a user pinned with `CHAOS_KIND_IMAGES`, by the version they stand for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImagePins {
    pins: Vec<(Version, NodeImage)>,
}

impl ImagePins {
    /// The pins `CHAOS_KIND_IMAGES` sets (none when unset); a malformed value is an error that
    /// says what it accepts.
    pub fn from_env() -> anyhow::Result<ImagePins> {
        match std::env::var(PINS_VAR) {
            Ok(text) => ImagePins::parse(&text),
            Err(VarError::NotPresent) => Ok(ImagePins::default()),
            Err(VarError::NotUnicode(_)) => bail!("{PINS_VAR} is not valid UTF-8; {PINS_FORMAT}"),
        }
    }

    /// Parses the value of `CHAOS_KIND_IMAGES`. An image's kubelet version is its tag when the tag
    /// is `vX.Y.Z` (and must then agree with the key), else the key's.
    pub fn parse(text: &str) -> anyhow::Result<ImagePins> {
        let mut pins = ImagePins::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (key, image) = entry
                .split_once('=')
                .map(|(key, image)| (key.trim(), image.trim()))
                .filter(|(key, image)| {
                    !key.is_empty() && !image.is_empty() && !image.contains(char::is_whitespace)
                })
                .ok_or_else(|| {
                    anyhow!("{PINS_VAR}: `{entry}` is not VERSION=IMAGE; {PINS_FORMAT}")
                })?;
            let version: Version = key
                .parse()
                .map_err(|err| anyhow!("{PINS_VAR}: in `{entry}`, {err}"))?;
            if pins.pins.iter().any(|(pinned, _)| *pinned == version) {
                bail!("{PINS_VAR}: {version} is pinned twice; give each version one image");
            }
            let kubelet_version = match tag_version(image) {
                Some(tagged)
                    if tagged.minor != version.minor
                        || version
                            .patch
                            .is_some_and(|patch| tagged.patch != Some(patch)) =>
                {
                    bail!(
                        "{PINS_VAR}: `{entry}` pins Kubernetes {version} to an image tagged \
                         v{tagged}; the version before `=` must be the image's"
                    )
                }
                Some(tagged) => format!("v{tagged}"),
                None => version.kubelet_version(),
            };
            let image = NodeImage {
                image: image.to_owned(),
                kubelet_version,
                release: None,
                best_effort: false,
            };
            pins.pins.push((version, image));
        }
        Ok(pins)
    }

    /// The pin for `version`: one for exactly that version, else one for its minor whose image is
    /// of that patch.
    pub fn get(&self, version: Version) -> Option<&NodeImage> {
        let exact = self.pins.iter().find(|(pinned, _)| *pinned == version);
        let by_minor = || {
            self.pins.iter().find(|(pinned, image)| {
                pinned.patch.is_none()
                    && pinned.minor == version.minor
                    && image.kubelet_version == version.kubelet_version()
            })
        };
        exact.or_else(by_minor).map(|(_, image)| image)
    }

    /// Every pin, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (Version, &NodeImage)> {
        self.pins.iter().map(|(version, image)| (*version, image))
    }

    /// No pins at all.
    pub fn is_empty(&self) -> bool {
        self.pins.is_empty()
    }
}

/// The Kubernetes version in an image's tag when the tag is `vX.Y.Z`:
/// `kindest/node:v1.29.2@sha256:...` is 1.29.2.
fn tag_version(image: &str) -> Option<Version> {
    let name = image.split('@').next()?;
    let (_, tag) = name
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))?;
    let version: Version = tag.strip_prefix('v')?.parse().ok()?;
    version.patch.is_some().then_some(version)
}

/// The release whose images the installed kind gets: itself, or the newest older one the table
/// knows (for a release newer than the table, the newest known).
fn shipping_release(installed: KindRelease) -> Option<&'static Release> {
    RELEASES.iter().find(|release| release.kind <= installed)
}

/// The image of `version` that the shipping release has, else the newest one of any release; of
/// equal versions, the one built for the release nearest to `installed`.
fn newest_image(version: Version, installed: KindRelease) -> Option<TableImage> {
    let shipped = shipping_release(installed)
        .into_iter()
        .flat_map(images_of)
        .filter(|image| image.matches(version))
        .max_by_key(|image| image.version);
    shipped.or_else(|| {
        table()
            .filter(|image| image.matches(version))
            .max_by_key(|image| (image.version, nearness(image.release, installed)))
    })
}

/// Orders releases by closeness to `installed`: older ones first, the newest of them best, then
/// newer ones, the oldest of them best.
fn nearness(release: KindRelease, installed: KindRelease) -> (bool, i64) {
    let ordinal = |r: KindRelease| {
        (i64::from(r.major) * 1_000 + i64::from(r.minor)) * 1_000 + i64::from(r.patch)
    };
    match release <= installed {
        true => (true, ordinal(release)),
        false => (false, -ordinal(release)),
    }
}

/// One image of the table.
#[derive(Clone, Copy, Debug)]
struct TableImage {
    release: KindRelease,
    /// Always with a patch.
    version: Version,
    tag: &'static str,
    digest: &'static str,
}

impl TableImage {
    /// Whether this image is of `version`: of its minor, and of its patch if it has one.
    fn matches(&self, version: Version) -> bool {
        self.version.minor == version.minor
            && version
                .patch
                .is_none_or(|patch| self.version.patch == Some(patch))
    }

    fn node_image(self, installed: KindRelease) -> NodeImage {
        NodeImage {
            image: format!("kindest/node:{}@sha256:{}", self.tag, self.digest),
            kubelet_version: self.tag.to_owned(),
            release: Some(self.release),
            best_effort: self.release != installed,
        }
    }
}

fn images_of(release: &'static Release) -> impl Iterator<Item = TableImage> {
    release.images.iter().map(move |&(tag, digest)| TableImage {
        release: release.kind,
        version: tag.parse().expect("the table's tags are versions (tested)"),
        tag,
        digest,
    })
}

fn table() -> impl Iterator<Item = TableImage> {
    RELEASES.iter().flat_map(images_of)
}

/// The images a kind release was published with, from its release notes (which say: "You *must*
/// use the `@sha256` digest to guarantee an image built for this release").
struct Release {
    kind: KindRelease,
    /// The tag of the release's default image (`pkg/apis/config/defaults/image.go`), kept to
    /// check the table against it.
    #[cfg_attr(not(test), allow(dead_code, reason = "read by the table's tests"))]
    default: &'static str,
    /// Tag and sha256 digest (of the multi-arch manifest list) of every image.
    images: &'static [(&'static str, &'static str)],
}

/// kind v0.25.0 to v0.33.0, newest release first.
static RELEASES: &[Release] = &[
    Release {
        kind: KindRelease::new(0, 33, 0),
        default: "v1.37.0",
        images: &[
            (
                "v1.37.0",
                "a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5",
            ),
            (
                "v1.36.4",
                "099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed",
            ),
            (
                "v1.35.8",
                "07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0",
            ),
            (
                "v1.34.11",
                "44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d",
            ),
        ],
    },
    Release {
        kind: KindRelease::new(0, 32, 0),
        default: "v1.36.1",
        images: &[
            (
                "v1.36.1",
                "3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5",
            ),
            (
                "v1.35.5",
                "ce977ae6d65918d0b58a5f8b5e940429c2ce42fa3a5619ec2bbc60b949c0ac95",
            ),
            (
                "v1.34.8",
                "02722c2dedddcfc00febf5d27fbeb9b7b2c14294c82109ff4a85d89ac9ba3256",
            ),
            (
                "v1.33.12",
                "3f5c8443c620245e4d355cfe09e96a91ead32ceaa569d3f1ca9edf0cb2fe2ff4",
            ),
        ],
    },
    Release {
        kind: KindRelease::new(0, 31, 0),
        default: "v1.35.0",
        images: &[
            (
                "v1.35.0",
                "452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f",
            ),
            (
                "v1.34.3",
                "08497ee19eace7b4b5348db5c6a1591d7752b164530a36f855cb0f2bdcbadd48",
            ),
            (
                "v1.33.7",
                "d26ef333bdb2cbe9862a0f7c3803ecc7b4303d8cea8e814b481b09949d353040",
            ),
            (
                "v1.32.11",
                "5fc52d52a7b9574015299724bd68f183702956aa4a2116ae75a63cb574b35af8",
            ),
            (
                "v1.31.14",
                "6f86cf509dbb42767b6e79debc3f2c32e4ee01386f0489b3b2be24b0a55aac2b",
            ),
        ],
    },
    Release {
        kind: KindRelease::new(0, 30, 0),
        default: "v1.34.0",
        images: &[
            (
                "v1.34.0",
                "7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a",
            ),
            (
                "v1.33.4",
                "25a6018e48dfcaee478f4a59af81157a437f15e6e140bf103f85a2e7cd0cbbf2",
            ),
            (
                "v1.32.8",
                "abd489f042d2b644e2d033f5c2d900bc707798d075e8186cb65e3f1367a9d5a1",
            ),
            (
                "v1.31.12",
                "0f5cc49c5e73c0c2bb6e2df56e7df189240d83cf94edfa30946482eb08ec57d2",
            ),
        ],
    },
    Release {
        kind: KindRelease::new(0, 29, 0),
        default: "v1.33.1",
        images: &[
            (
                "v1.33.1",
                "050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f",
            ),
            (
                "v1.32.5",
                "e3b2327e3a5ab8c76f5ece68936e4cafaa82edf58486b769727ab0b3b97a5b0d",
            ),
            (
                "v1.31.9",
                "b94a3a6c06198d17f59cca8c6f486236fa05e2fb359cbd75dabbfc348a10b211",
            ),
            (
                "v1.30.13",
                "397209b3d947d154f6641f2d0ce8d473732bd91c87d9575ade99049aa33cd648",
            ),
        ],
    },
    Release {
        kind: KindRelease::new(0, 28, 0),
        default: "v1.33.1",
        images: &[
            (
                "v1.33.1",
                "8d866994839cd096b3590681c55a6fa4a071fdaf33be7b9660e5697d2ed13002",
            ),
            (
                "v1.32.5",
                "36187f6c542fa9b78d2d499de4c857249c5a0ac8cc2241bef2ccd92729a7a259",
            ),
            (
                "v1.31.9",
                "156da58ab617d0cb4f56bbdb4b493f4dc89725505347a4babde9e9544888bb92",
            ),
            (
                "v1.30.13",
                "8673291894dc400e0fb4f57243f5fdc6e355ceaa765505e0e73941aa1b6e0b80",
            ),
        ],
    },
    Release {
        kind: KindRelease::new(0, 27, 0),
        default: "v1.32.2",
        images: &[
            (
                "v1.32.2",
                "f226345927d7e348497136874b6d207e0b32cc52154ad8323129352923a3142f",
            ),
            (
                "v1.31.6",
                "28b7cbb993dfe093c76641a0c95807637213c9109b761f1d422c2400e22b8e87",
            ),
            (
                "v1.30.10",
                "4de75d0e82481ea846c0ed1de86328d821c1e6a6a91ac37bf804e5313670e507",
            ),
            (
                "v1.29.14",
                "8703bd94ee24e51b778d5556ae310c6c0fa67d761fae6379c8e0bb480e6fea29",
            ),
            // Built for v0.27.0 after its release (cluster-api's kind mapper lists it).
            (
                "v1.33.0",
                "02f73d6ae3f11ad5d543f16736a2cb2a63a300ad60e81dac22099b0b04784a4e",
            ),
        ],
    },
    Release {
        kind: KindRelease::new(0, 26, 0),
        default: "v1.32.0",
        images: &[
            (
                "v1.32.0",
                "c48c62eac5da28cdadcf560d1d8616cfa6783b58f0d94cf63ad1bf49600cb027",
            ),
            (
                "v1.31.4",
                "2cb39f7295fe7eafee0842b1052a599a4fb0f8bcf3f83d96c7f4864c357c6c30",
            ),
            (
                "v1.30.8",
                "17cd608b3971338d9180b00776cb766c50d0a0b6b904ab4ff52fd3fc5c6369bf",
            ),
            (
                "v1.29.12",
                "62c0672ba99a4afd7396512848d6fc382906b8f33349ae68fb1dbfe549f70dec",
            ),
        ],
    },
    Release {
        kind: KindRelease::new(0, 25, 0),
        default: "v1.31.2",
        images: &[
            (
                "v1.31.2",
                "18fbefc20a7113353c7b75b5c869d7145a6abd6269154825872dc59c1329912e",
            ),
            (
                "v1.30.6",
                "b6d08db72079ba5ae1f4a88a09025c0a904af3b52387643c285442afb05ab994",
            ),
            (
                "v1.29.10",
                "3b2d8c31753e6c8069d4fc4517264cd20e86fd36220671fb7d0a5855103aa84b",
            ),
            (
                "v1.28.15",
                "a7c05c7ae043a0b8c818f5a06188bc2c4098f6cb59ca7d1856df00375d839251",
            ),
            (
                "v1.27.16",
                "2d21a61643eafc439905e18705b8186f3296384750a835ad7a005dceb9546d20",
            ),
            (
                "v1.26.15",
                "c79602a44b4056d7e48dc20f7504350f1e87530fe953428b792def00bc1076dd",
            ),
            // Built for v0.25.0 after its release (cluster-api's kind mapper lists it).
            (
                "v1.32.0",
                "2458b423d635d7b01637cac2d6de7e1c1dca1148a2ba2e90975e214ca849e7cb",
            ),
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    const V0_33: KindRelease = KindRelease::new(0, 33, 0);
    const V0_31: KindRelease = KindRelease::new(0, 31, 0);
    const V0_27: KindRelease = KindRelease::new(0, 27, 0);

    fn v(text: &str) -> Version {
        text.parse().unwrap()
    }

    fn none() -> ImagePins {
        ImagePins::default()
    }

    #[test]
    fn the_table_is_well_formed() {
        for release in RELEASES {
            for &(tag, digest) in release.images {
                assert!(
                    tag_version(&format!("kindest/node:{tag}")).is_some(),
                    "{tag}"
                );
                assert_eq!(digest.len(), 64, "{} {tag}", release.kind);
                assert!(
                    digest
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                    "{} {tag}: {digest}",
                    release.kind
                );
            }
            assert!(
                release
                    .images
                    .iter()
                    .any(|(tag, _)| *tag == release.default),
                "{}: default {} is not among its images",
                release.kind,
                release.default
            );
        }
        let releases: Vec<KindRelease> = RELEASES.iter().map(|r| r.kind).collect();
        assert!(releases.windows(2).all(|w| w[0] > w[1]), "newest first");
        assert_eq!(releases.first(), Some(&V0_33));
        assert_eq!(releases.last(), Some(&KindRelease::new(0, 25, 0)));
    }

    #[test]
    fn the_table_agrees_with_the_topology_crates_newest_patches() {
        let minors: BTreeSet<u32> = table().map(|image| image.version.minor).collect();
        for minor in minors {
            let newest = table()
                .filter(|image| image.version.minor == minor)
                .filter_map(|image| image.version.patch)
                .max();
            assert_eq!(
                newest,
                chaos_topology::newest_known_patch(minor),
                "1.{minor}"
            );
        }
    }

    #[test]
    fn parses_kind_version_output() {
        let release = Some(V0_33);
        assert_eq!(
            parse_kind_version("kind v0.33.0 go1.27.2 linux/amd64\n"),
            release
        );
        assert_eq!(parse_kind_version("kind version 0.33.0\n"), release);
        assert_eq!(
            parse_kind_version("kind v0.34.0-alpha+fed26882 go1.27 linux/arm64"),
            Some(KindRelease::new(0, 34, 0))
        );
        for bad in [
            "",
            "kind",
            "minikube v1.2.3",
            "kind vX.Y.Z",
            "kind v0.33",
            "kind v0.33.0.1",
        ] {
            assert_eq!(parse_kind_version(bad), None, "{bad:?}");
        }
        assert_eq!(V0_33.to_string(), "v0.33.0");
    }

    #[test]
    fn a_minor_resolves_to_the_installed_releases_image() {
        let image = resolve(v("1.35"), V0_33, &none()).unwrap();
        assert_eq!(
            image,
            NodeImage {
                image: "kindest/node:v1.35.8@sha256:\
                        07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0"
                    .into(),
                kubelet_version: "v1.35.8".into(),
                release: Some(V0_33),
                best_effort: false,
            }
        );
        assert_eq!(image.warning(), None);
        let image = resolve(v("1.35"), V0_31, &none()).unwrap();
        assert_eq!(
            (image.kubelet_version.as_str(), image.best_effort),
            ("v1.35.0", false)
        );
    }

    #[test]
    fn a_minor_the_release_does_not_ship_is_the_newest_older_image_best_effort() {
        let image = resolve(v("1.29"), V0_33, &none()).unwrap();
        assert_eq!(image.kubelet_version, "v1.29.14");
        assert_eq!(image.release, Some(V0_27));
        assert!(image.best_effort);
        assert!(
            image
                .image
                .starts_with("kindest/node:v1.29.14@sha256:8703bd94")
        );
        let warning = image.warning().unwrap();
        assert!(!warning.contains('\n'));
        assert!(warning.contains("built for kind v0.27.0"), "{warning}");
        assert!(warning.contains("best-effort"), "{warning}");
        // 1.28 only ever shipped with v0.25.
        let image = resolve(v("1.28"), V0_33, &none()).unwrap();
        assert_eq!(image.image.split('@').next(), Some("kindest/node:v1.28.15"));
        // An older kind gets newer releases' images the same way.
        let image = resolve(v("1.36"), V0_31, &none()).unwrap();
        assert_eq!(
            (image.kubelet_version.as_str(), image.best_effort),
            ("v1.36.4", true)
        );
    }

    #[test]
    fn a_patch_pins_that_patch() {
        let image = resolve(v("1.29.12"), V0_33, &none()).unwrap();
        assert_eq!(image.kubelet_version, "v1.29.12");
        assert_eq!(image.release, Some(KindRelease::new(0, 26, 0)));
        // Shipped by the installed release: not best effort.
        let image = resolve(v("v1.34.3"), V0_31, &none()).unwrap();
        assert_eq!(
            (image.kubelet_version.as_str(), image.best_effort),
            ("v1.34.3", false)
        );
        // A patch built for two releases: the one nearest to the installed release.
        let image = resolve(v("1.33.1"), V0_33, &none()).unwrap();
        assert_eq!(image.release, Some(KindRelease::new(0, 29, 0)));
        let image = resolve(v("1.33.1"), KindRelease::new(0, 28, 0), &none()).unwrap();
        assert_eq!(
            (image.release, image.best_effort),
            (Some(KindRelease::new(0, 28, 0)), false)
        );
        let image = resolve(v("1.32.0"), KindRelease::new(0, 24, 0), &none()).unwrap();
        assert_eq!(image.release, Some(KindRelease::new(0, 25, 0)));
    }

    #[test]
    fn unknown_versions_list_what_is_available_and_how_to_pin() {
        let err = resolve(v("1.12"), V0_33, &none()).unwrap_err();
        assert_eq!(
            err,
            ResolveError::Unknown {
                version: v("1.12"),
                installed: V0_33
            }
        );
        let text = err.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(
            text.starts_with("no kind node image for Kubernetes 1.12: "),
            "{text}"
        );
        assert!(
            text.contains("kind v0.33.0 ships 1.37.0, 1.36.4, 1.35.8, 1.34.11;"),
            "{text}"
        );
        assert!(text.contains("best effort (built for other kind releases): 1.33.12, 1.32.11, "));
        assert!(text.contains("1.26.15;"), "{text}");
        assert!(text.contains("CHAOS_KIND_IMAGES=1.12=kindest/node:<tag>@sha256:<digest>"));

        let text = resolve(v("1.29.3"), V0_33, &none())
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("1.29.3 (images of 1.29: 1.29.14, 1.29.12, 1.29.10)"),
            "{text}"
        );
    }

    #[test]
    fn a_version_no_image_is_of_is_unknown_and_the_error_lists_the_versions() {
        for known in ["1.26", "1.29", "1.37", "1.29.12", "v1.33.1"] {
            assert_eq!(check_known(v(known), &none()), Ok(()), "{known}");
        }
        let err = check_known(v("1.99"), &none()).unwrap_err();
        assert_eq!(err.version, v("1.99"));
        assert_eq!(
            err.to_string(),
            "Kubernetes 1.99 has no kind node image; kind has images of 1.37, 1.36, 1.35, 1.34, \
             1.33, 1.32, 1.31, 1.30, 1.29, 1.28, 1.27, 1.26 (`cargo chaos versions` lists their \
             patches), or pin one: CHAOS_KIND_IMAGES=1.99=kindest/node:<tag>@sha256:<digest>"
        );
        let err = check_known(v("1.29.3"), &none()).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "Kubernetes 1.29.3 has no kind node image; the images of 1.29 are 1.29.14, \
                 1.29.12, 1.29.10 (write 1.29 for the newest), or pin one: "
            ),
            "{err}"
        );
        // A pin makes any version known.
        let pins = ImagePins::parse("1.99=my.registry:5000/node:custom").unwrap();
        assert_eq!(check_known(v("1.99"), &pins), Ok(()));
        assert!(check_known(v("1.98"), &pins).is_err());
    }

    #[test]
    fn kubeadm_1_37_needs_a_kind_that_writes_v1beta4() {
        let err = resolve(v("1.37"), V0_31, &none()).unwrap_err();
        assert_eq!(
            err,
            ResolveError::KindTooOld {
                version: v("1.37"),
                installed: V0_31
            }
        );
        assert!(
            err.to_string().contains("needs kind v0.32.0 or newer"),
            "{err}"
        );
        assert!(resolve(v("1.37"), KindRelease::new(0, 32, 0), &none()).is_ok());
    }

    #[test]
    fn a_release_newer_than_the_table_uses_the_newest_known_images_best_effort() {
        let newer = KindRelease::new(0, 34, 1);
        let image = resolve(v("1.35"), newer, &none()).unwrap();
        assert_eq!(
            (image.kubelet_version.as_str(), image.release),
            ("v1.35.8", Some(V0_33))
        );
        assert!(image.best_effort);
        let warning = newer.warning().unwrap();
        assert!(
            warning.contains("using the images of kind v0.33.0"),
            "{warning}"
        );
        assert_eq!(V0_33.warning(), None);
        assert!(
            KindRelease::new(0, 24, 0)
                .warning()
                .unwrap()
                .contains("older than")
        );
    }

    #[test]
    fn pins_win_by_exact_version_or_minor() {
        let digest = "51a1434a5397193442f0be2a297b488b6c919ce8a3931be0ce822606ea5ca245";
        let pins = ImagePins::parse(&format!(
            " 1.29=kindest/node:v1.29.2@sha256:{digest}, 1.30.99=my.registry:5000/node:custom ,"
        ))
        .unwrap();
        let image = resolve(v("1.29"), V0_33, &pins).unwrap();
        assert_eq!(image.image, format!("kindest/node:v1.29.2@sha256:{digest}"));
        assert_eq!(
            (image.kubelet_version.as_str(), image.release),
            ("v1.29.2", None)
        );
        assert_eq!(image.warning(), None);
        // A minor pin stands for the patch of its image only.
        assert_eq!(resolve(v("1.29.2"), V0_33, &pins).unwrap().release, None);
        assert_eq!(
            resolve(v("1.29.14"), V0_33, &pins).unwrap().release,
            Some(V0_27)
        );
        // An untagged (non-vX.Y.Z) image takes the key's version; a pin makes any version known.
        let image = resolve(v("1.30.99"), V0_33, &pins).unwrap();
        assert_eq!(image.image, "my.registry:5000/node:custom");
        assert_eq!(image.kubelet_version, "v1.30.99");
        assert_eq!(pins.iter().count(), 2);
    }

    #[test]
    fn malformed_pins_name_the_variable_and_the_format() {
        for bad in [
            "1.29",
            "=kindest/node:v1.29.2",
            "1.29=",
            "1.29=kindest/node v1.29.2",
            "latest=kindest/node:v1.29.2",
            "1.29=kindest/node:v1.30.1",
            "1.29.2=kindest/node:v1.29.3",
            "1.29=a,1.29=b",
        ] {
            let err = ImagePins::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("CHAOS_KIND_IMAGES: "), "{bad}: {err}");
            assert!(!err.contains('\n'), "{bad}: {err}");
        }
        let err = ImagePins::parse("1.29").unwrap_err().to_string();
        assert!(err.contains("VERSION=IMAGE"), "{err}");
        assert_eq!(ImagePins::parse(" , ").unwrap(), ImagePins::default());
    }

    #[test]
    fn the_catalog_separates_shipped_from_best_effort_images() {
        let (shipped, extras) = catalog(V0_33);
        let tags = |images: &[NodeImage]| -> Vec<String> {
            images.iter().map(|i| i.kubelet_version.clone()).collect()
        };
        assert_eq!(
            tags(&shipped),
            ["v1.37.0", "v1.36.4", "v1.35.8", "v1.34.11"]
        );
        assert!(shipped.iter().all(|i| !i.best_effort));
        assert_eq!(
            tags(&extras),
            [
                "v1.33.12", "v1.32.11", "v1.31.14", "v1.30.13", "v1.29.14", "v1.28.15", "v1.27.16",
                "v1.26.15"
            ]
        );
        assert!(extras.iter().all(|i| i.best_effort));
        // kind v0.31 cannot run 1.37 at all, so it is not offered.
        let (shipped, extras) = catalog(V0_31);
        assert_eq!(tags(&shipped)[0], "v1.35.0");
        assert_eq!(
            tags(&extras)[..2],
            ["v1.36.4".to_owned(), "v1.30.13".to_owned()]
        );
    }
}
