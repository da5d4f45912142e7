//! `cargo chaos versions`: the node images a kind release supports, and the best-effort ones.

use std::fmt::Write;

use chaos_runtime::__kind::images::{self, ImagePins, KindRelease, NodeImage, PINS_VAR};

use crate::Failure;

pub(crate) fn run(release: impl FnOnce() -> KindRelease) -> Result<(), Failure> {
    let pins = ImagePins::from_env().map_err(|err| Failure::Input(format!("{err:#}")))?;
    let installed = release();
    let (shipped, extras) = images::catalog(installed);
    let mut out = String::new();
    writeln!(out, "Supported by kind {installed}:").unwrap();
    table(&mut out, &shipped);
    writeln!(out).unwrap();
    writeln!(
        out,
        "Best effort (built for other kind releases; kind {installed} runs them only on a \
         best-effort basis):"
    )
    .unwrap();
    table(&mut out, &extras);
    if !pins.is_empty() {
        writeln!(out).unwrap();
        writeln!(out, "Pinned with {PINS_VAR}:").unwrap();
        let pinned: Vec<(String, String)> = pins
            .iter()
            .map(|(version, image)| (version.to_string(), image.image.clone()))
            .collect();
        rows(
            &mut out,
            &["VERSION", "IMAGE"],
            pinned.iter().map(|(v, i)| vec![v.as_str(), i]),
        );
    }
    crate::print(&out)
}

fn table(out: &mut String, images: &[NodeImage]) {
    if images.is_empty() {
        writeln!(out, "  (none this build knows)").unwrap();
        return;
    }
    let cells: Vec<[String; 3]> = images
        .iter()
        .map(|image| {
            let built_for = image
                .release
                .map(|r| format!("kind {r}"))
                .unwrap_or_default();
            let version = image.kubelet_version.trim_start_matches('v').to_owned();
            [version, built_for, image.image.clone()]
        })
        .collect();
    rows(
        out,
        &["VERSION", "BUILT FOR", "IMAGE"],
        cells
            .iter()
            .map(|row| row.iter().map(String::as_str).collect()),
    );
}

/// Left-aligned columns two spaces apart, indented by two spaces.
fn rows<'a>(out: &mut String, header: &[&'a str], body: impl Iterator<Item = Vec<&'a str>>) {
    let body: Vec<Vec<&str>> = body.collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            std::iter::once(header)
                .chain(body.iter().map(Vec::as_slice))
                .map(|row| row[column].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(header).chain(body.iter().map(Vec::as_slice)) {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            write!(line, "  {cell:width$}").unwrap();
        }
        writeln!(out, "{}", line.trim_end()).unwrap();
    }
}
