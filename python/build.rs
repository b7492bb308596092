//! Builds the engine libraries (`libsessionkit_engine_*.so`) from the repository's workspace and
//! copies them into `sessionkit/_engines/`, so the wheel maturin packs next carries them beside
//! the extension: `pip install ./python` is then self-contained.
//!
//! The engines are built by the root workspace's own cargo (its lock file, its target dir), in
//! the same profile as this crate, exactly as the Rust host's engines are built.
//! `SESSIONKIT_SKIP_ENGINE_BUILD=1` skips this (engines then come from `SESSIONKIT_ENGINE_PATH`).

use std::{env, path::PathBuf, process::Command};

/// The engine crates bundled into the wheel, by their package and library names.
const ENGINES: [&str; 6] = [
    "db",
    "cached_db",
    "cache",
    "file",
    "signed_cookies",
    "account_db",
];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("python/ sits inside the repository")
        .to_path_buf();
    println!("cargo:rerun-if-env-changed=SESSIONKIT_SKIP_ENGINE_BUILD");
    for watched in ["engines", "sdk", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    if env::var_os("SESSIONKIT_SKIP_ENGINE_BUILD").is_some_and(|v| v == "1") {
        return;
    }
    let profile = env::var("PROFILE").expect("set by cargo");
    let release = profile == "release";
    let target_dir = root.join("target");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .arg("build")
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    if release {
        command.arg("--release");
    }
    for engine in ENGINES {
        command.arg("-p").arg(format!("sessionkit-engine-{engine}"));
    }
    // What cargo tells this build script about *this* build must not leak into the nested one.
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the engine libraries: {e}"));
    assert!(
        status.success(),
        "building the engine libraries failed ({status}); see the cargo output above"
    );
    let built = target_dir.join(if release { "release" } else { "debug" });
    let bundle = manifest_dir.join("sessionkit").join("_engines");
    std::fs::create_dir_all(&bundle)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", bundle.display()));
    for engine in ENGINES {
        let file = format!("libsessionkit_engine_{engine}.so");
        let from = built.join(&file);
        let to = bundle.join(&file);
        // Replace, never overwrite in place: a running process may have the old copy mapped.
        let staging = bundle.join(format!(".{file}.tmp"));
        std::fs::copy(&from, &staging)
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", from.display()));
        // The workspace's release profile keeps line tables (for its benchmarks); a wheel does
        // not need them (a sixth of the size). Exported symbols stay.
        match Command::new("strip")
            .arg("--strip-debug")
            .arg(&staging)
            .status()
        {
            Ok(status) if status.success() => {}
            other => println!(
                "cargo:warning=strip --strip-debug {} failed ({other:?}); bundling it unstripped",
                staging.display()
            ),
        }
        std::fs::rename(&staging, &to)
            .unwrap_or_else(|e| panic!("cannot install {}: {e}", to.display()));
    }
}
