//! What every component's config check shares: the error that names a field, its value
//! and the fix, and the checks of files a config names.
//!
//! Each component validates its own section (`discovery::Config::validate`,
//! `outputs::OutputConfig::validate`, ...) and names its fields relative to that section;
//! `config` prefixes the section with [`FieldError::within`]. This module opens no socket
//! and knows no component.

use std::path::{Path, PathBuf};

/// A config field the agent cannot use.
#[derive(Debug, thiserror::Error)]
pub enum FieldError {
    /// A value out of range or of the wrong shape.
    #[error("config field {field} = {value:?}: {reason}")]
    Invalid {
        /// Dotted field path (`outputs.audit.batch_size`).
        field: String,
        /// The offending value.
        value: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A file the config names cannot be used.
    #[error("config field {field} = {}: {problem}; fix the path or its permissions", path.display())]
    File {
        /// Dotted field path.
        field: String,
        /// The file.
        path: PathBuf,
        /// What failed.
        problem: String,
    },
}

impl FieldError {
    /// The same error with its field put under `section` (`batch_size` in
    /// `outputs.audit` becomes `outputs.audit.batch_size`).
    pub fn within(mut self, section: &str) -> Self {
        let field = match &mut self {
            Self::Invalid { field, .. } | Self::File { field, .. } => field,
        };
        *field = format!("{section}.{field}");
        self
    }

    /// The dotted field path.
    pub fn field(&self) -> &str {
        match self {
            Self::Invalid { field, .. } | Self::File { field, .. } => field,
        }
    }
}

/// A [`FieldError::Invalid`].
pub fn invalid(field: &str, value: impl ToString, reason: impl Into<String>) -> FieldError {
    FieldError::Invalid {
        field: field.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// How a check proves that a file the agent will write is writable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteCheck {
    /// Open the file for append, creating it if missing (`gannet run`, which writes it).
    OpenOrCreate,
    /// Leave the disk as it is (`gannet config check`).
    NoSideEffects,
}

/// `path` (the value of `field`) can be opened for reading.
///
/// # Errors
/// [`FieldError::File`] with the I/O error.
pub fn check_readable(field: &str, path: &Path) -> Result<(), FieldError> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|e| FieldError::File {
            field: field.to_string(),
            path: path.to_path_buf(),
            problem: format!("cannot be read ({e})"),
        })
}

/// `path` (the value of `field`) can be opened for append, proved as `how` says.
///
/// # Errors
/// [`FieldError::File`] with the reason.
pub fn check_writable(field: &str, path: &Path, how: WriteCheck) -> Result<(), FieldError> {
    let result = match how {
        WriteCheck::OpenOrCreate => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| e.to_string()),
        WriteCheck::NoSideEffects => check_writable_in_place(path),
    };
    result.map_err(|problem| FieldError::File {
        field: field.to_string(),
        path: path.to_path_buf(),
        problem: format!("cannot be opened for writing ({problem})"),
    })
}

/// Whether `path` could be opened for append, without creating or changing anything: an
/// existing file is opened for append (no create); for a missing one, its parent must be
/// an existing directory the agent may write to and search (`access(2)`). The error is the
/// reason.
fn check_writable_in_place(path: &Path) -> Result<(), String> {
    use rustix::fs::{access, Access};
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err("it is a directory".to_string()),
        // A FIFO opened for writing blocks until a reader comes: ask access(2) instead.
        Ok(meta) if !meta.is_file() => {
            access(path, Access::WRITE_OK).map_err(|e| std::io::Error::from(e).to_string())
        }
        Ok(_) => std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| e.to_string()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            match std::fs::metadata(parent) {
                Ok(meta) if meta.is_dir() => access(parent, Access::WRITE_OK | Access::EXEC_OK)
                    .map_err(|e| {
                        format!(
                            "directory {} is not writable: {}",
                            parent.display(),
                            std::io::Error::from(e)
                        )
                    }),
                Ok(_) => Err(format!("{} is not a directory", parent.display())),
                Err(e) => Err(format!("directory {}: {e}", parent.display())),
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_puts_the_field_under_its_section() {
        let e = invalid("batch_size", 0, "must be at least 1").within("outputs.audit");
        assert_eq!(e.field(), "outputs.audit.batch_size");
        assert_eq!(
            e.to_string(),
            "config field outputs.audit.batch_size = \"0\": must be at least 1"
        );
    }
}
