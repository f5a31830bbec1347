//! Builds the web app into the binary: memory-serve embeds the files of `web/dist` (made by
//! `cargo xtask web`; brotli-compressed in release builds) and lists them for `http::web`, and
//! the app's `index.html` is kept aside for its Content-Security-Policy. Without a build of the
//! app the binary carries none, and its page at `/` says how to make one.

use std::{env, fs, path::PathBuf};

fn main() {
    let dist = PathBuf::from("../web/dist");
    // Also when it does not exist yet: the build that makes it must rebuild the hub.
    println!("cargo::rerun-if-changed=../web/dist");
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    let index = fs::read_to_string(dist.join("index.html")).unwrap_or_default();
    let dir = if index.is_empty() {
        let empty = out.join("no-web-app");
        fs::create_dir_all(&empty).unwrap_or_else(|e| panic!("{}: {e}", empty.display()));
        empty
    } else {
        dist
    };
    fs::write(out.join("web-index.html"), index).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    // Embedded in every build, so that tests serve what a copied binary serves.
    memory_serve::load_directory_with_embed(dir, true);
}
