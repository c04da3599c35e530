//! Shared by the plugin test binaries: building the test plugins of `tests/plugins/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Builds `tests/plugins` for wasm32-wasip2 once per test process (a file lock keeps
/// concurrent test binaries from building at the same time) and returns the output dir.
pub fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/plugins");
        let target = workspace.join("target");
        std::fs::create_dir_all(&target).ok();
        let lock = std::fs::File::create(target.join(".build-lock")).ok();
        if let Some(lock) = &lock {
            lock.lock().ok();
        }
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(workspace.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .status();
        assert!(
            matches!(status, Ok(s) if s.success()),
            "building tests/plugins failed: {status:?}"
        );
        target.join("wasm32-wasip2/release")
    })
}

/// The built `.wasm` of test plugin `name` (`sandbox-probe` -> `sandbox_probe.wasm`).
pub fn wasm(name: &str) -> PathBuf {
    plugin_dir().join(format!("{}.wasm", name.replace('-', "_")))
}
