//! `DatabaseUrl`: which database vexil talks to, parsed once, never printed with its
//! password.

use std::fmt;
use std::path::PathBuf;

/// A parsed `DATABASE_URL`: `sqlite://path` or `postgres://…` (docs/schema.md).
///
/// `Display` and `Debug` show the URL with any password replaced by `***`, so the
/// value can go into an error message or a log line as it is.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    raw: String,
    backend: Backend,
}

/// The two databases vexil runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Why a text is not a database URL vexil can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("DATABASE_URL is empty")]
    Empty,
    #[error(
        "DATABASE_URL {url} has an unsupported scheme {scheme:?}: use sqlite://PATH or postgres://USER@HOST/DB"
    )]
    Scheme { url: String, scheme: String },
    #[error("DATABASE_URL {url} names no SQLite file: use sqlite://PATH, e.g. sqlite://vexil.db")]
    NoPath { url: String },
}

impl DatabaseUrl {
    /// The embedded default: a SQLite file in the working directory.
    pub const DEFAULT: &str = "sqlite://vexil.db";

    pub fn parse(text: &str) -> Result<DatabaseUrl, UrlError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(UrlError::Empty);
        }
        let Some((scheme, rest)) = text.split_once("://").or_else(|| text.split_once(':')) else {
            return Err(UrlError::Scheme {
                url: redact(text),
                scheme: String::new(),
            });
        };
        let backend = match scheme {
            "sqlite" => Backend::Sqlite,
            "postgres" | "postgresql" => Backend::Postgres,
            other => {
                return Err(UrlError::Scheme {
                    url: redact(text),
                    scheme: other.to_owned(),
                });
            }
        };
        if backend == Backend::Sqlite && sqlite_path(rest).as_os_str().is_empty() {
            return Err(UrlError::NoPath { url: redact(text) });
        }
        Ok(DatabaseUrl {
            raw: text.to_owned(),
            backend,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL with its password, for the driver only.
    pub(crate) fn expose(&self) -> &str {
        &self.raw
    }

    /// The URL carries a password (between `user:` and `@`, or `password=`).
    pub fn has_password(&self) -> bool {
        redact(&self.raw) != self.raw
    }

    /// The SQLite file this URL names (`None` for PostgreSQL).
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        let rest = self
            .raw
            .split_once("://")
            .or_else(|| self.raw.split_once(':'))?
            .1;
        (self.backend == Backend::Sqlite).then(|| sqlite_path(rest))
    }

    /// The host of a PostgreSQL URL that reaches another machine and leaves TLS to
    /// the default; `None` for SQLite, a loopback host or a Unix socket, or a URL that
    /// names its `sslmode`.
    ///
    /// The default, `prefer`, falls back to plain text without a word when TLS is
    /// declined, by the server or by whoever sits between, so a URL that crosses a
    /// network should say `require` or `verify-full` (docs/deploy.md). Read as the
    /// driver reads it: a `host` parameter, `PGHOST` and `PGSSLMODE` count. Names are
    /// not resolved: `localhost` is the one name taken as loopback, next to
    /// 127.0.0.0/8 and `::1`.
    pub fn remote_host_without_sslmode(&self) -> Option<String> {
        if self.backend != Backend::Postgres || self.names_sslmode() {
            return None;
        }
        pg_remote_host_with_default_sslmode(&self.raw)
    }

    /// The query string has an `sslmode` parameter (or the driver's `ssl-mode`).
    fn names_sslmode(&self) -> bool {
        self.raw.rsplit_once('?').is_some_and(|(_, query)| {
            query
                .split('&')
                .any(|param| matches!(param.split('=').next(), Some("sslmode" | "ssl-mode")))
        })
    }
}

/// The host the driver would connect to over TCP, if it is not loopback and the
/// driver's TLS mode is its default (`PGSSLMODE` may have chosen another).
#[cfg(feature = "postgres")]
fn pg_remote_host_with_default_sslmode(raw: &str) -> Option<String> {
    use sqlx::postgres::{PgConnectOptions, PgSslMode};
    use std::str::FromStr;
    // A URL the driver cannot read is reported when it connects.
    let options = PgConnectOptions::from_str(raw).ok()?;
    let host = options.get_host();
    let unix_socket = options.get_socket().is_some() || host.starts_with('/');
    if unix_socket || !matches!(options.get_ssl_mode(), PgSslMode::Prefer) || is_loopback(host) {
        return None;
    }
    Some(host.to_owned())
}

#[cfg(not(feature = "postgres"))]
fn pg_remote_host_with_default_sslmode(_raw: &str) -> Option<String> {
    None
}

/// `localhost`, 127.0.0.0/8 or `::1` (also written `[::1]` or `::ffff:127.0.0.1`).
#[cfg(feature = "postgres")]
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// `sqlite://vexil.db?mode=rwc` → `vexil.db`; `sqlite:///var/lib/vexil.db` → the
/// absolute path.
fn sqlite_path(rest: &str) -> PathBuf {
    PathBuf::from(rest.split('?').next().unwrap_or_default())
}

/// The URL with its password replaced by `***`: the one between `user:` and the last
/// `@` (a password may itself hold `/` or `?`), and a `password=` query parameter.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (rest, query) = match rest.rsplit_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => rest.to_owned(),
    };
    let query = query.map(|query| {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=***"),
                _ => param.to_owned(),
            })
            .collect();
        format!("?{}", params.join("&"))
    });
    format!("{scheme}://{rest}{}", query.unwrap_or_default())
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.raw))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", redact(&self.raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let url =
            DatabaseUrl::parse("postgres://vexil:s3cr%40t@db.internal:5432/vexil?sslmode=require")
                .unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://vexil:***@db.internal:5432/vexil?sslmode=require"
        );
        assert_eq!(
            format!("{url:?}"),
            "DatabaseUrl(postgres://vexil:***@db.internal:5432/vexil?sslmode=require)"
        );
        assert_eq!(url.backend(), Backend::Postgres);
        let url = DatabaseUrl::parse("postgres://postgres@127.0.0.1/test").unwrap();
        assert_eq!(url.to_string(), "postgres://postgres@127.0.0.1/test");
        let url =
            DatabaseUrl::parse("postgres://u:pa/ss?w@db/vexil?password=again&sslmode=require")
                .unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://u:***@db/vexil?password=***&sslmode=require"
        );
    }

    #[test]
    fn sqlite_urls_name_a_file() {
        let url = DatabaseUrl::parse("sqlite://vexil.db").unwrap();
        assert_eq!(url.sqlite_file(), Some(PathBuf::from("vexil.db")));
        let url = DatabaseUrl::parse("sqlite:///var/lib/vexil/vexil.db?mode=rwc").unwrap();
        assert_eq!(
            url.sqlite_file(),
            Some(PathBuf::from("/var/lib/vexil/vexil.db"))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://").unwrap_err().to_string(),
            "DATABASE_URL sqlite:// names no SQLite file: use sqlite://PATH, e.g. sqlite://vexil.db"
        );
    }

    /// Which URLs leave TLS to the default across a network (run with no `PGHOST` or
    /// `PGSSLMODE` set, as CI does).
    #[cfg(feature = "postgres")]
    #[test]
    fn remote_hosts_without_sslmode_are_found() {
        #[track_caller]
        fn check(url: &str, expected: Option<&str>) {
            let url = DatabaseUrl::parse(url).unwrap();
            assert_eq!(
                url.remote_host_without_sslmode().as_deref(),
                expected,
                "{url}"
            );
        }
        check("postgres://vexil@db.internal/vexil", Some("db.internal"));
        check(
            "postgresql://vexil:s3cret@10.0.0.5:5433/vexil",
            Some("10.0.0.5"),
        );
        check(
            "postgres://vexil@[2001:db8::1]/vexil",
            Some("[2001:db8::1]"),
        );
        check(
            "postgres://vexil@127.0.0.1/vexil?host=db.internal",
            Some("db.internal"),
        );
        check(
            "postgres://vexil@db.internal/vexil?application_name=x",
            Some("db.internal"),
        );
        // TLS chosen, whichever way.
        check("postgres://vexil@db.internal/vexil?sslmode=require", None);
        check(
            "postgres://vexil@db.internal/vexil?sslmode=verify-full",
            None,
        );
        check(
            "postgres://vexil@db.internal/vexil?x=1&ssl-mode=disable",
            None,
        );
        check("postgres://vexil@db.internal/vexil?sslmode=prefer", None);
        // This machine.
        check("postgres://postgres@127.0.0.1:5432/vexil", None);
        check("postgres://postgres@127.0.0.2/vexil", None);
        check("postgres://postgres@localhost/vexil", None);
        check("postgres://postgres@LOCALHOST/vexil", None);
        check("postgres://postgres@[::1]:5432/vexil", None);
        check("postgres://postgres@[::ffff:127.0.0.1]/vexil", None);
        check("postgres://postgres@%2Fvar%2Frun%2Fpostgresql/vexil", None);
        check(
            "postgres://postgres@db.internal/vexil?host=/var/run/postgresql",
            None,
        );
        check("sqlite://vexil.db", None);
    }

    #[test]
    fn other_schemes_are_refused_without_their_password() {
        assert_eq!(
            DatabaseUrl::parse("mysql://root:hunter2@localhost/db")
                .unwrap_err()
                .to_string(),
            "DATABASE_URL mysql://root:***@localhost/db has an unsupported scheme \"mysql\": \
             use sqlite://PATH or postgres://USER@HOST/DB"
        );
        assert_eq!(DatabaseUrl::parse("  ").unwrap_err(), UrlError::Empty);
    }
}
