//! Generates the C header from `src/ffi` with cbindgen. The header lands in OUT_DIR, where a
//! test compares it with the committed `include/audioplay.h`; `scripts/regen-header.sh`
//! (AUDIOPLAY_WRITE_HEADER=1) writes it into `include/`.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=AUDIOPLAY_WRITE_HEADER");
    // The shared library's SONAME carries the major version: an incompatible release is a
    // new file, old programs keep the one they linked.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!(
            "cargo:rustc-cdylib-link-arg=-Wl,-soname,libaudioplay.so.{}",
            env::var("CARGO_PKG_VERSION_MAJOR").unwrap()
        );
    }
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let mut config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(format!(
        "\n#define AP_VERSION_MAJOR {}\n#define AP_VERSION_MINOR {}\n#define AP_VERSION_PATCH {}\n#define AP_VERSION_STRING \"{}\"\n",
        env::var("CARGO_PKG_VERSION_MAJOR").unwrap(),
        env::var("CARGO_PKG_VERSION_MINOR").unwrap(),
        env::var("CARGO_PKG_VERSION_PATCH").unwrap(),
        env::var("CARGO_PKG_VERSION").unwrap(),
    ));
    let header = cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("audioplay.h");
    header.write_to_file(&out);
    if env::var_os("AUDIOPLAY_WRITE_HEADER").is_some() {
        header.write_to_file(dir.join("include/audioplay.h"));
    }
}
