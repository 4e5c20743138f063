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
    let mut text = Vec::new();
    header.write(&mut text);
    let text = c89(&String::from_utf8(text).expect("cbindgen writes UTF-8"));
    write_if_changed(
        &PathBuf::from(env::var("OUT_DIR").unwrap()).join("audioplay.h"),
        &text,
    );
    if env::var_os("AUDIOPLAY_WRITE_HEADER").is_some() {
        write_if_changed(&dir.join("include/audioplay.h"), &text);
    }
}

/// The header must compile as ANSI C (`gcc -std=c89 -pedantic`, tests/c_abi.rs): cbindgen
/// writes `// cond` after `#endif` and `}` and a comma after an enum's last enumerator,
/// whatever the config says; both are rewritten here (its doc comments are already `/** */`,
/// by cbindgen.toml).
fn c89(h: &str) -> String {
    let mut out = String::with_capacity(h.len());
    let lines: Vec<&str> = h.lines().collect();
    for (i, &line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let in_comment = t.starts_with("/*") || t.starts_with('*');
        let mut fixed = match line.find("//") {
            Some(at) if !in_comment => {
                format!("{} /* {} */", line[..at].trim_end(), line[at + 2..].trim())
            }
            _ => line.to_string(),
        };
        if fixed.ends_with(',') && lines.get(i + 1).is_some_and(|n| n.trim() == "};") {
            fixed.pop();
        }
        out.push_str(&fixed);
        out.push('\n');
    }
    out
}

fn write_if_changed(path: &std::path::Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).expect("cannot write the header");
    }
}
