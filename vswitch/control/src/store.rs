//! Persistence of the desired state: `<dir>/state.yaml`, written
//! atomically after every successful apply (a temporary file in the same
//! directory, fsynced, renamed over the old one, and the directory
//! fsynced), read back when the daemon starts.

use crate::model::{DesiredState, ParseError};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why the state could not be loaded or saved.
#[derive(Debug)]
pub enum StoreError {
    /// Reading or writing failed.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// The file is not a valid desired state.
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and what.
        error: ParseError,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            StoreError::Parse { path, error } => match error.line {
                Some(line) => write!(f, "{}:{line}: {error}", path.display()),
                None => write!(f, "{}: {error}", path.display()),
            },
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { error, .. } => Some(error),
            StoreError::Parse { error, .. } => Some(error),
        }
    }
}

/// The directory the desired state is kept in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// The file name inside the directory.
    pub const FILE: &'static str = "state.yaml";

    /// The state kept in `dir` (created by the first save).
    pub fn new(dir: impl Into<PathBuf>) -> StateDir {
        StateDir { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(Self::FILE)
    }

    /// The saved state; `None` if nothing was ever saved.
    pub fn load(&self) -> Result<Option<DesiredState>, StoreError> {
        let path = self.path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(StoreError::Io { path, error }),
        };
        DesiredState::from_yaml(&text).map(Some).map_err(|error| StoreError::Parse { path, error })
    }

    /// Saves `state` atomically: a reader (or a crash) sees the old file
    /// or the new one, never a mix.
    pub fn save(&self, state: &DesiredState) -> Result<(), StoreError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |error| StoreError::Io { path, error }
        };
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let path = self.path();
        let tmp = self.dir.join(format!(".{}.tmp.{}", Self::FILE, std::process::id()));
        let text = format!("# vswitch desired state, written by the daemon after each apply\n{}", state.to_yaml());
        let written = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(StoreError::Io { path: tmp, error: e });
        }
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(StoreError::Io { path, error: e });
        }
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io_err(&self.dir))
    }
}
