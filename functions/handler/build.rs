//! Embeds the API reference page's Swagger UI (`/api/docs`) from the npm package
//! `swagger-ui-dist`, pinned in `docs/package-lock.json` and installed by `infra/local/up.sh`
//! (or `npm ci --prefix functions/handler/docs`): its bundle and stylesheet, gzipped once here,
//! so the page never loads anything from a CDN.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

const ASSETS: [&str; 2] = ["swagger-ui-bundle.js", "swagger-ui.css"];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let package = manifest.join("docs/node_modules/swagger-ui-dist");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=docs/package-lock.json");
    for asset in ASSETS {
        let source = package.join(asset);
        println!("cargo:rerun-if-changed={}", source.display());
        gzip(&source, &out.join(format!("{asset}.gz")));
    }
}

fn gzip(source: &Path, target: &Path) {
    let bytes = fs::read(source).unwrap_or_else(|error| {
        panic!(
            "{}: {error}. The /api/docs page embeds Swagger UI from npm: run infra/local/up.sh, \
             or npm ci --prefix functions/handler/docs",
            source.display()
        )
    });
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(&bytes).expect("gzip in memory");
    fs::write(target, encoder.finish().expect("gzip in memory")).expect("write OUT_DIR");
}
