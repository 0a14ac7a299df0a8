//! The HTTP client of remote mode: hyper's pooled client over rustls (ring, the one
//! crypto provider of vexil's graph, and the system's trust store through
//! `rustls-platform-verifier`, so an operator's own CA works as for curl). Plain hyper
//! rather than a higher-level client: a library must not change which TLS provider
//! the application's own HTTP clients pick.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::{ExposeSecret, SecretString};

use super::Refusal;
use crate::error::Error;

/// A TCP connection not made in this long has failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A snapshot or a report not answered in this long has failed.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `Retry-After` obeyed: a server asking for more is asked again sooner.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// A snapshot larger than this is refused rather than read (a thousand flags are
/// about 200 KiB).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The server a handle follows, and how to reach it. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Client {
    pool: Pool<Connector, Full<Bytes>>,
    /// `VEXIL_URL` without a trailing `/`.
    base: Arc<str>,
    authorization: HeaderValue,
    user_agent: HeaderValue,
}

impl std::fmt::Debug for Client {
    /// Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// `VEXIL_URL`: an `http` or `https` URL of a `vexil serve`, checked when the handle
/// starts.
pub(crate) fn check_url(url: &str) -> Result<Arc<str>, Error> {
    let bad = |reason: &'static str| Error::BadServerUrl {
        url: url.to_owned(),
        reason,
    };
    let parsed: Uri = url.parse().map_err(|_| bad("it is not a URL"))?;
    if !matches!(parsed.scheme_str(), Some("http" | "https")) {
        return Err(bad("it must start with http:// or https://"));
    }
    let Some(authority) = parsed.authority() else {
        return Err(bad("it names no host"));
    };
    if authority.as_str().contains('@') {
        return Err(bad(
            "it must not hold credentials (the client key goes in VEXIL_CLIENT_KEY)",
        ));
    }
    if authority.host().is_empty() {
        return Err(bad("it names no host"));
    }
    if parsed.query().is_some() || url.contains('#') {
        return Err(bad("it must not hold a query or a fragment"));
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback());
    if parsed.scheme_str() == Some("http") && !loopback {
        // Allowed (a private network, a sidecar), but the key crosses it in clear.
        tracing::warn!(
            host,
            "VEXIL_URL is plain http to another host: the client key crosses the network unencrypted; use https"
        );
    }
    Ok(Arc::from(url.trim_end_matches('/')))
}

/// `VEXIL_CLIENT_KEY`: `vxc_` and 64 hexadecimal characters, as `vexil client-key
/// create` prints it. Never echoed in the error.
pub(crate) fn check_key(key: &str) -> Result<SecretString, Error> {
    let well_formed = key
        .strip_prefix("vxc_")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if well_formed {
        Ok(SecretString::from(key.to_owned()))
    } else {
        Err(Error::BadClientKey)
    }
}

impl Client {
    pub(crate) fn new(
        base: Arc<str>,
        key: &SecretString,
        user_agent: &str,
    ) -> Result<Client, Error> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_keepalive(Some(Duration::from_secs(30)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config()?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let pool = Pool::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
            .map_err(|_| Error::BadClientKey)?;
        authorization.set_sensitive(true);
        let user_agent = HeaderValue::from_str(user_agent)
            .map_err(|error| Error::HttpClient(error.to_string()))?;
        Ok(Client {
            pool,
            base,
            authorization,
            user_agent,
        })
    }

    /// Sends a request to `path` with the key; a status other than 2xx or 304 is the
    /// server's refusal.
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<http::Response<Incoming>, Refusal> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(AUTHORIZATION, self.authorization.clone())
            .header(USER_AGENT, self.user_agent.clone());
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|error| Refusal::Unreachable(error.to_string()))?;
        let response = self
            .pool
            .request(request)
            .await
            .map_err(|error| Refusal::Unreachable(vexil_core::message::error_chain(&error)))?;
        let status = response.status();
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            Ok(response)
        } else {
            Err(refusal(response).await)
        }
    }
}

/// The whole body of `response`, at most `MAX_BODY_BYTES`.
pub(super) async fn body(response: http::Response<Incoming>) -> Result<Bytes, Refusal> {
    Limited::new(response.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|error| Refusal::Unreachable(format!("reading the answer: {error}")))
}

/// rustls with ring and the system's trust store.
fn tls_config() -> Result<rustls::ClientConfig, Error> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::HttpClient(error.to_string()))?
        .with_platform_verifier()
        .map(rustls::ConfigBuilder::<rustls::ClientConfig, _>::with_no_client_auth)
        .map_err(|error| Error::HttpClient(error.to_string()))
}

async fn refusal(response: http::Response<Incoming>) -> Refusal {
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED {
        return Refusal::Key;
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        let seconds = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .unwrap_or(1);
        return Refusal::Wait(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    // The server's JSON error (`{"error", "message"}`), else the status alone.
    let message = body(response)
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|body| body["message"].as_str().map(str::to_owned))
        .unwrap_or_default();
    Refusal::Status {
        status: status.as_u16(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_url_is_checked_and_its_trailing_slash_dropped() {
        assert_eq!(
            &*check_url("https://flags.internal/").unwrap(),
            "https://flags.internal"
        );
        assert_eq!(
            &*check_url("http://127.0.0.1:8080/vexil").unwrap(),
            "http://127.0.0.1:8080/vexil"
        );
        for (url, says) in [
            ("flags.internal", "http:// or https://"),
            ("ftp://flags.internal", "http:// or https://"),
            ("https://user:secret@flags.internal", "credentials"),
            ("https://flags.internal/?a=1", "query"),
            ("https://flags.internal/#top", "fragment"),
            ("not a url", "not a URL"),
        ] {
            let error = check_url(url).unwrap_err().to_string();
            assert!(error.contains(says), "{url}: {error}");
        }
    }

    #[test]
    fn a_client_key_is_checked_and_never_echoed() {
        let key = format!("vxc_{}", "a1".repeat(32));
        assert!(check_key(&key).is_ok());
        for bad in [
            "",
            "vxc_",
            "vxt_0123",
            &format!("vxc_{}", "g".repeat(64)),
            &key[..60],
        ] {
            let error = check_key(bad).unwrap_err().to_string();
            // (The message names the prefix, so only a longer value could echo.)
            assert!(bad.len() <= "vxc_".len() || !error.contains(bad), "{error}");
        }
    }
}
