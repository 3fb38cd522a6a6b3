//! Embeds the console's assets: our own CSS and JS (`assets/`) and the npm packages it uses
//! (`node_modules/`, installed from `package-lock.json` by `scripts/services-up`, or here when
//! missing). Each gets a name with its content hash (served as immutable) and a gzip copy.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (served name, source under web/, content type)
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "htmx.js",
        "node_modules/htmx.org/dist/htmx.min.js",
        "text/javascript",
    ),
    ("console.js", "assets/console.js", "text/javascript"),
    ("console.css", "assets/console.css", "text/css"),
];

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    println!("cargo::rerun-if-changed=package-lock.json");
    println!("cargo::rerun-if-changed=assets");
    if !dir.join("node_modules/htmx.org/package.json").exists() {
        install(&dir);
    }
    let mut table = String::from("pub static ASSETS: &[Asset] = &[\n");
    for (name, source, content_type) in ASSETS {
        let path = dir.join(source);
        println!("cargo::rerun-if-changed={}", path.display());
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run scripts/services-up, or npm ci in web/)",
                path.display()
            )
        });
        let hash = short_hash(&bytes);
        let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
        let hashed = format!("{stem}.{hash}.{ext}");
        let gz = out.join(format!("{hashed}.gz"));
        std::fs::write(&gz, gzip(&bytes)).unwrap_or_else(|e| panic!("{}: {e}", gz.display()));
        table.push_str(&format!(
            "    Asset {{ name: {name:?}, hashed: {hashed:?}, content_type: {content_type:?}, \
             body: include_bytes!({path:?}), gzip: include_bytes!({gz:?}) }},\n",
            path = path.display().to_string(),
            gz = gz.display().to_string(),
        ));
    }
    table.push_str("];\n");
    let target = out.join("assets.rs");
    std::fs::write(&target, table).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
}

/// `npm ci` from the lockfile, when the packages are not there yet.
fn install(dir: &Path) {
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status();
    match status {
        Ok(s) if s.success() => {}
        other => panic!(
            "npm ci in {} failed ({other:?}); run scripts/services-up",
            dir.display()
        ),
    }
}

fn short_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let written = e.write_all(bytes).and_then(|_| e.finish());
    written.unwrap_or_else(|e| panic!("gzip: {e}"))
}
