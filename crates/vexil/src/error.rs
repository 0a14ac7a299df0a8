//! `Error`: why a `Flags` handle could not be built, or a read could not be made.
//! A database that does not answer is not an error at start (the handle resolves
//! from the variables and the YAML defaults until it does).

use vexil_core::{DeclErrors, EnvError};
use vexil_store::{StoreError, UrlError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(
        "VEXIL_ENV is not set: a process must say which env it belongs to (e.g. VEXIL_ENV=prod)"
    )]
    NoEnv,
    #[error(transparent)]
    UnknownEnv(#[from] EnvError),
    #[error("cannot read flags file {path}")]
    ReadFlagsFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the flags file is invalid:\n{0}")]
    InvalidFlagsFile(DeclErrors),
    #[error(transparent)]
    DatabaseUrl(#[from] UrlError),
    #[error("{name} must be a whole number of {unit}, not {value:?}")]
    BadSetting {
        name: &'static str,
        unit: &'static str,
        value: String,
    },
    #[error("the operating system gave no random bytes for an instance id: {0}")]
    Random(String),
    #[error("{what} must be between {min:?} and {max:?}, not {value:?}")]
    OutOfRange {
        what: &'static str,
        value: std::time::Duration,
        min: std::time::Duration,
        max: std::time::Duration,
    },
    #[error("this handle's declarations were given in code, not read from a file")]
    NoFlagsFile,
    #[error("the database has not answered yet")]
    DatabaseDown,
    #[error(transparent)]
    Store(StoreError),
}
