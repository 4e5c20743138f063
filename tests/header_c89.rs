//! The installed header compiles as strict C89, C99, C11 and C++11 (issue 17): no `//`
//! comments, no trailing enumerator commas, nothing newer than C89 outside `__cplusplus` or
//! `__STDC_VERSION__` guards. Needs a C and a C++ compiler (gcc, g++: scripts/deps.sh).

use std::process::Command;

fn compiles(compiler: &str, args: &[&str]) {
    let header = concat!(env!("CARGO_MANIFEST_DIR"), "/include/audioplay.h");
    let out = Command::new(compiler)
        .args(args)
        .args(["-pedantic", "-Werror", "-Wall", "-Wextra", "-fsyntax-only"])
        .arg(header)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        out.status.success(),
        "{compiler} {args:?} rejects the header:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_header_compiles_as_c89_and_later() {
    for std in ["c89", "c99", "c11"] {
        compiles("gcc", &[&format!("-std={std}"), "-x", "c"]);
    }
    compiles("g++", &["-std=c++11", "-x", "c++"]);
}

#[test]
fn the_header_has_no_line_comments() {
    let h = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/audioplay.h"))
        .unwrap();
    for (n, line) in h.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("/*") || t.starts_with('*') {
            continue;
        }
        assert!(!line.contains("//"), "line {}: {line}", n + 1);
    }
}
