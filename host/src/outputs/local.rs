//! The local outputs: JSON lines to stdout, or to a file rotated by size. Owns their
//! config sections (`type = "stdout"`, `type = "file"`) and the file's check.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::record::Encoded;
use crate::validate::{check_writable, invalid, FieldError, WriteCheck};

/// `type = "stdout"`: no options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {}

/// `type = "file"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The file to append JSON lines to; its directory must exist and be writable.
    pub path: PathBuf,
    /// Rotate once the file reaches this many bytes.
    #[serde(default = "FileConfig::default_max_file_size_bytes")]
    pub max_file_size_bytes: u64,
    /// Rotated files kept beside the live one (`path.1` ... `path.N`).
    #[serde(default = "FileConfig::default_max_files")]
    pub max_files: u32,
}

impl FileConfig {
    fn default_max_file_size_bytes() -> u64 {
        100 * 1024 * 1024
    }
    fn default_max_files() -> u32 {
        5
    }

    /// Checks the sizes and that `path` is writable, proved as `how` says. Fields are
    /// named relative to the output's section.
    ///
    /// # Errors
    /// The first field that cannot be used.
    pub fn validate(&self, how: WriteCheck) -> Result<(), FieldError> {
        if self.max_file_size_bytes == 0 {
            return Err(invalid("max_file_size_bytes", 0, "must be at least 1"));
        }
        if self.max_files == 0 {
            return Err(invalid("max_files", 0, "must be at least 1"));
        }
        check_writable("path", &self.path, how)
    }
}

/// Where a local output writes.
pub enum LocalWriter {
    /// Standard output.
    Stdout,
    /// A rotating file.
    File(RotatingFile),
}

impl LocalWriter {
    /// Writes a batch as JSON lines and flushes.
    ///
    /// # Errors
    /// The first I/O error; lines before it were written.
    pub fn write_batch(&mut self, batch: &[Arc<Encoded>]) -> io::Result<()> {
        match self {
            Self::Stdout => {
                let stdout = io::stdout();
                let mut out = stdout.lock();
                for e in batch {
                    out.write_all(e.json.as_bytes())?;
                    out.write_all(b"\n")?;
                }
                out.flush()
            }
            Self::File(f) => f.write_batch(batch),
        }
    }
}

/// A JSON-lines file that rotates to `path.1` ... `path.N` when it reaches a size.
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: u32,
}

impl RotatingFile {
    /// Opens (creating) `path` for appending.
    ///
    /// # Errors
    /// When the file cannot be opened for writing.
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            max_size: max_size.max(1),
            max_files: max_files.max(1),
        })
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        for n in (1..self.max_files).rev() {
            match std::fs::rename(self.rotated(n), self.rotated(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&self.path, self.rotated(1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }

    /// Appends each event as one line, rotating first when a line would cross the size.
    ///
    /// # Errors
    /// The first I/O error.
    pub fn write_batch(&mut self, batch: &[Arc<Encoded>]) -> io::Result<()> {
        for e in batch {
            let len = e.json.len() as u64 + 1;
            if self.size > 0 && self.size + len > self.max_size {
                self.rotate()?;
            }
            self.file.write_all(e.json.as_bytes())?;
            self.file.write_all(b"\n")?;
            self.size += len;
        }
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(text: &str) -> Arc<Encoded> {
        Arc::new(Encoded {
            id: text.into(),
            json: text.into(),
            event: None,
        })
    }

    #[test]
    fn rotates_by_size_and_keeps_max_files() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("out.jsonl");
        // Each line is 10 bytes; 25 bytes per file means two lines per file.
        let mut f = RotatingFile::open(&path, 25, 2)?;
        for i in 0..7 {
            f.write_batch(&[ev(&format!("line-{i:04}"))])?;
        }
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        assert_eq!(read(path.clone()), "line-0006\n");
        assert_eq!(
            read(dir.path().join("out.jsonl.1")),
            "line-0004\nline-0005\n"
        );
        assert_eq!(
            read(dir.path().join("out.jsonl.2")),
            "line-0002\nline-0003\n"
        );
        assert!(!dir.path().join("out.jsonl.3").exists());
        Ok(())
    }

    #[test]
    fn appends_to_an_existing_file() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "old\n")?;
        RotatingFile::open(&path, 1000, 1)?.write_batch(&[ev("new")])?;
        assert_eq!(std::fs::read_to_string(&path)?, "old\nnew\n");
        Ok(())
    }
}
