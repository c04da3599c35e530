//! The cache of precompiled plugin artifacts (`.cwasm`) in a root-only directory.
//!
//! Owns the directory layout and its cleaning. A key is the plugin's content hash plus an
//! engine key (the wasmtime version and the engine's compatibility hash), so a changed
//! engine configuration or wasmtime version never loads an artifact built for another.
//! Only `plugins::engine` turns bytes into components.

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// File extension of cached artifacts.
const ARTIFACT_EXT: &str = "cwasm";

/// A cache directory that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Creating, reading or checking the directory failed.
    #[error("plugin cache {path:?}: {error}; check the path or pass another --plugin-cache-dir")]
    Io {
        /// The directory.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The directory is not private to the agent's user.
    #[error("plugin cache {path:?}: {problem}; make it owned by the agent's user with mode 0700")]
    NotPrivate {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// A directory of precompiled artifacts, private to the agent's user.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

fn effective_uid() -> u32 {
    #[allow(unsafe_code)]
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe {
        libc::geteuid()
    }
}

impl ArtifactCache {
    /// Opens (creating with mode 0700 if needed) the cache at `dir` for `engine_key`.
    ///
    /// # Errors
    /// [`CacheError`] when the directory cannot be created or is not owned by this user
    /// with no group or other access.
    pub fn open(dir: &Path, engine_key: String) -> Result<Self, CacheError> {
        let io = |error| CacheError::Io {
            path: dir.to_path_buf(),
            error,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
        let meta = std::fs::symlink_metadata(dir).map_err(io)?;
        if !meta.is_dir() {
            return Err(CacheError::NotPrivate {
                path: dir.to_path_buf(),
                problem: "is not a directory".into(),
            });
        }
        if meta.uid() != effective_uid() {
            return Err(CacheError::NotPrivate {
                path: dir.to_path_buf(),
                problem: format!("is owned by uid {}, not {}", meta.uid(), effective_uid()),
            });
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o022 != 0 {
            // Others could have written into it: its artifacts cannot be trusted.
            return Err(CacheError::NotPrivate {
                path: dir.to_path_buf(),
                problem: format!("has mode {mode:o} (group or others may write)"),
            });
        }
        if mode & 0o077 != 0 {
            // Ours and writable only by us (a hostPath `DirectoryOrCreate` is made 0755):
            // nothing could have been planted, so make it private instead of refusing.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
            tracing::info!(
                message = "Plugin cache directory made private (mode 0700).",
                path = %dir.display(),
                was = format!("{mode:o}"),
            );
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            engine_key,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the artifact for `content_hash` lives.
    pub fn path_for(&self, content_hash: &str) -> PathBuf {
        self.dir
            .join(format!("{content_hash}-{}.{ARTIFACT_EXT}", self.engine_key))
    }

    /// The cached artifact for `content_hash`, if any.
    pub fn get(&self, content_hash: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path_for(content_hash)).ok()
    }

    /// Stores an artifact: written to a temporary file (0600) and renamed into place.
    ///
    /// # Errors
    /// [`CacheError::Io`] when the write fails.
    pub fn put(&self, content_hash: &str, artifact: &[u8]) -> Result<(), CacheError> {
        let path = self.path_for(content_hash);
        let tmp = self
            .dir
            .join(format!(".{content_hash}.{}.tmp", std::process::id()));
        let io = |error| CacheError::Io {
            path: tmp.clone(),
            error,
        };
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
        file.write_all(artifact).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(())
    }

    /// Removes every artifact built by another engine key, or for content not in `keep`.
    /// Returns how many files were removed.
    pub fn retain(&self, keep: &HashSet<String>) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let stale = match name.strip_suffix(&format!(".{ARTIFACT_EXT}")) {
                Some(stem) => match stem.split_once('-') {
                    Some((content, engine)) => engine != self.engine_key || !keep.contains(content),
                    None => true,
                },
                // Leftover temporary files from an interrupted write.
                None => name.ends_with(".tmp"),
            };
            if stale && std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_is_created_private() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("cache");
        let cache = ArtifactCache::open(&dir, "e1".into())?;
        assert_eq!(std::fs::metadata(&dir)?.mode() & 0o777, 0o700);
        cache.put("abc", b"x")?;
        assert_eq!(cache.get("abc").as_deref(), Some(&b"x"[..]));
        Ok(())
    }

    #[test]
    fn a_directory_others_may_write_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        for mode in [0o775, 0o757, 0o777] {
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))?;
            let err = ArtifactCache::open(tmp.path(), "e1".into())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.contains(&format!("has mode {mode:o} (group or others may write)")),
                "{err}"
            );
        }
        Ok(())
    }

    #[test]
    fn a_readable_directory_of_ours_is_made_private() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        // What a hostPath `DirectoryOrCreate` makes.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))?;
        ArtifactCache::open(tmp.path(), "e1".into())?;
        assert_eq!(std::fs::metadata(tmp.path())?.mode() & 0o777, 0o700);
        Ok(())
    }

    #[test]
    fn retain_removes_other_engines_and_unused_content() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("c");
        let old = ArtifactCache::open(&dir, "old".into())?;
        old.put("aaa", b"1")?;
        let cache = ArtifactCache::open(&dir, "new".into())?;
        cache.put("aaa", b"2")?;
        cache.put("bbb", b"3")?;
        let keep: HashSet<String> = ["aaa".to_string()].into();
        assert_eq!(cache.retain(&keep), 2);
        assert!(cache.get("aaa").is_some());
        assert!(cache.get("bbb").is_none());
        assert!(old.get("aaa").is_none());
        Ok(())
    }
}
