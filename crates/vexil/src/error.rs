//! `Error`: why a `Flags` handle could not be built, or a read could not be made.
//! A source (database or server) that does not answer is not an error at start (the
//! handle resolves from the variables and the YAML defaults until it does).

use vexil_core::{DeclErrors, EnvError};

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
    #[cfg(feature = "database")]
    #[error(transparent)]
    DatabaseUrl(#[from] vexil_store::UrlError),
    #[error(
        "both DATABASE_URL and VEXIL_URL are set: a process follows either the database (DATABASE_URL) or a vexil server (VEXIL_URL with VEXIL_CLIENT_KEY), not both; unset one"
    )]
    BothSources,
    #[error(
        "VEXIL_URL is set but VEXIL_CLIENT_KEY is not: remote mode needs a client key (vexil client-key create --env ENV --app NAME)"
    )]
    NoClientKey,
    #[error(
        "VEXIL_CLIENT_KEY is not a client key: it must be vxc_ and 64 hexadecimal characters, as vexil client-key create prints it"
    )]
    BadClientKey,
    #[error("VEXIL_URL {url:?} is not a vexil server's URL: {reason}")]
    BadServerUrl { url: String, reason: &'static str },
    #[error(
        "the vexil server refuses VEXIL_CLIENT_KEY: it is unknown or revoked (vexil client-key list shows the keys)"
    )]
    ClientKeyRefused,
    #[error(
        "VEXIL_CLIENT_KEY reads env {key_env} but this process belongs to {env} (VEXIL_ENV): use a key of {env}"
    )]
    KeyOfAnotherEnv { key_env: String, env: String },
    #[error("the vexil server: {0}")]
    Server(String),
    #[error("cannot set up an HTTP client: {0}")]
    HttpClient(String),
    #[error("{mode} is not built into this program: build vexil with the feature {features}")]
    NotBuiltIn {
        mode: &'static str,
        features: &'static str,
    },
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
    #[error("the source (database or server) has not answered yet")]
    SourceDown,
    #[cfg(feature = "database")]
    #[error(transparent)]
    Store(vexil_store::StoreError),
}

#[cfg(feature = "remote")]
impl From<crate::remote::Refusal> for Error {
    fn from(refused: crate::remote::Refusal) -> Error {
        use crate::remote::Refusal;
        match refused {
            Refusal::Key => Error::ClientKeyRefused,
            Refusal::WrongEnv { key_env, env } => Error::KeyOfAnotherEnv { key_env, env },
            other => Error::Server(other.to_string()),
        }
    }
}
