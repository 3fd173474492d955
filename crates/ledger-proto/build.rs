//! Compiles proto/ into Rust with protox (a pure-Rust protobuf compiler), so that no
//! system `protoc` is needed to build the workspace.

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../../proto");
    let package_dir = root.join("loan/v1");
    // Cargo scans a directory given to rerun-if-changed for any change below it.
    println!("cargo:rerun-if-changed={}", root.display());

    // Every .proto file of the package, in a fixed order so the output is stable.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&package_dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", package_dir.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .proto files in {}", package_dir.display());

    let descriptors = match protox::compile(&files, [&root]) {
        Ok(descriptors) => descriptors,
        // protox's errors name the file, line and column; show them as they are.
        Err(e) => panic!("proto/ does not compile:\n{e:?}"),
    };
    prost_build::Config::new().compile_fds(descriptors).unwrap_or_else(|e| panic!("prost-build failed on proto/: {e}"));
}
