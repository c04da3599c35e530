//! Hot reload: watches the plugin directory with `notify` (inotify) and reloads the set
//! once the directory has been quiet for the debounce period.
//!
//! Owns the watcher and its thread. Debouncing skips half-written files; deploying by
//! writing `NAME.wasm.tmp` then renaming it to `NAME.wasm` avoids them altogether. The
//! reload itself (compile, check, `init`, atomic swap or refusal) is `PluginSet::reload`.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};

use super::directory::PluginSet;

/// How long the directory must be quiet before a reload: long enough for a copy of a
/// few-MB plugin to finish.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(500);

/// The directory cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The set was not loaded from a directory.
    #[error("plugin watcher: the plugin set has no directory; load it with PluginSet::load_dir")]
    NoDirectory,
    /// inotify refused.
    #[error("plugin watcher {path:?}: {error}; check the directory exists and inotify limits (fs.inotify.max_user_watches)")]
    Watch {
        /// The directory.
        path: PathBuf,
        /// notify's error.
        error: notify::Error,
    },
    /// The reload thread could not start.
    #[error("plugin watcher: cannot start thread: {0}")]
    Spawn(std::io::Error),
}

/// A running watcher; dropping it stops watching (the reload thread then exits).
pub struct DirWatcher {
    _watcher: notify::RecommendedWatcher,
}

impl std::fmt::Debug for DirWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirWatcher")
    }
}

/// True for the files a plugin directory is made of.
fn is_plugin_file(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "wasm" || x == "toml")
}

/// Starts watching `set`'s directory; each burst of changes to `*.wasm` / `*.toml`
/// files triggers one `reload` after `debounce` of quiet.
///
/// # Errors
/// [`WatchError`].
pub fn watch(set: Arc<PluginSet>, debounce: Duration) -> Result<DirWatcher, WatchError> {
    let dir = set.dir().ok_or(WatchError::NoDirectory)?.to_path_buf();
    let (tx, rx) = mpsc::channel::<()>();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) => {
                let relevant = !matches!(event.kind, EventKind::Access(_))
                    && event.paths.iter().any(|p| is_plugin_file(p));
                if relevant {
                    let _ = tx.send(());
                }
            }
            Err(error) => tracing::warn!(message = "Plugin directory watch error.", %error),
        })
        .map_err(|error| WatchError::Watch {
            path: dir.clone(),
            error,
        })?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|error| WatchError::Watch {
            path: dir.clone(),
            error,
        })?;
    // The thread holds the set strongly but exits as soon as the watcher (and with it the
    // channel's sender) is dropped.
    std::thread::Builder::new()
        .name("gannet-plugin-watch".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                // Debounce: wait until no event arrives for `debounce`.
                loop {
                    match rx.recv_timeout(debounce) {
                        Ok(()) => continue,
                        Err(mpsc::RecvTimeoutError::Timeout) => break,
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
                // Errors are logged by `reload`; the previous chain keeps running.
                let _ = set.reload();
            }
        })
        .map_err(WatchError::Spawn)?;
    Ok(DirWatcher { _watcher: watcher })
}
