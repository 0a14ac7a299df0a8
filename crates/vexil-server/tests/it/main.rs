//! `serve` on a real loopback listener, as `vexil serve` runs it: it answers, a
//! reload with an invalid file keeps the last valid declarations, and shutdown lets it
//! return.

mod adopted;
mod api;
mod api_docs;
mod api_limits;
mod audit_page;
mod browser;
mod chrome;
mod client_keys_page;
mod connections;
mod console;
mod deprecation_page;
mod events;
mod flag_page;
mod flips;
mod forged_session;
mod free_text;
mod harness;
mod instances_page;
mod ofrep;
mod outage;
mod promotions;
mod promotions_page;
mod reconcile_page;
mod remote;
mod sdk;
mod sign_in;
mod subscribers;

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vexil_app::App;
use vexil_core::{EnvSnapshot, Envs};
use vexil_server::{ConsoleConfig, Reloaded, ServerState};
use vexil_store::Backend;
use vexil_testkit::{TestClock, TestDb};

async fn get(address: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn it_serves_reloads_and_stops() {
    let test_db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let flags_file = dir.path().join("feature_flags.yaml");
    std::fs::write(
        &flags_file,
        "dark_mode:\n  default: false\n  description: Dark theme.\n  risk: low\n",
    )
    .unwrap();
    let flags = vexil::read_flag_set(&flags_file).unwrap();
    let app = App::new(
        test_db.db.clone(),
        flags,
        Envs::runbook(),
        None,
        EnvSnapshot::default(),
        Arc::new(TestClock::fixed()),
    );
    let state = ServerState::new(Arc::new(app), flags_file.clone(), ConsoleConfig::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(vexil_server::serve(listener, state.clone(), async {
        let _ = stopped.await;
    }));

    let response = get(address, "/healthz").await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with("\r\n\r\nok\n"), "{response}");
    let ready = get(address, "/readyz").await;
    assert!(ready.starts_with("HTTP/1.1 200 OK"), "{ready}");
    assert!(
        ready.ends_with(r#"{"flags":1,"status":"ready"}"#),
        "{ready}"
    );
    let missing = get(address, "/nothing-here").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    // Every response, found or not, carries the hardening headers.
    for response in [&response, &missing] {
        let head = response.split("\r\n\r\n").next().unwrap().to_lowercase();
        for header in [
            "content-security-policy: default-src 'self'; script-src 'self';",
            "frame-ancestors 'none'",
            "x-content-type-options: nosniff",
            "referrer-policy: no-referrer",
            "x-frame-options: deny",
            "cache-control: no-store",
        ] {
            assert!(head.contains(header), "{header:?} missing in {head}");
        }
    }

    std::fs::write(&flags_file, "dark_mode:\n  default: maybe\n").unwrap();
    let error = state.reload().await.unwrap_err().to_string();
    assert!(error.contains("feature_flags.yaml:2:12"), "{error}");
    assert!(
        state.app.flags().get("dark_mode").is_some(),
        "the last valid set"
    );
    std::fs::write(
        &flags_file,
        "new_checkout:\n  default: true\n  description: The new checkout.\n  risk: high\n",
    )
    .unwrap();
    assert_eq!(state.reload().await.unwrap(), Reloaded { flags: 1 });
    assert!(state.app.flags().get("dark_mode").is_none());

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(
        TcpStream::connect(address).await.is_err(),
        "still listening"
    );
}

/// Sessions survive a new store over the same database (a restart), expire, and are
/// stored under a hash of their id only.
async fn sessions_persist_by_id_hash(backend: Backend) {
    use tower_sessions::SessionStore;
    use tower_sessions::session::{Id, Record};

    let test_db = TestDb::new(backend).await;
    let expiry = time::OffsetDateTime::now_utc() + time::Duration::minutes(30);
    let mut record = Record {
        id: Id::default(),
        data: [("user".to_owned(), serde_json::json!(7))].into(),
        expiry_date: expiry,
    };
    let store = vexil_server::DbSessionStore::new(test_db.db.clone());
    store.create(&mut record).await.unwrap();
    record
        .data
        .insert("elevated_until".to_owned(), serde_json::json!("later"));
    store.save(&record).await.unwrap();

    let restarted = vexil_server::DbSessionStore::new(test_db.db.clone());
    let loaded = restarted.load(&record.id).await.unwrap().expect("stored");
    assert_eq!(loaded.data, record.data);
    // SQLite keeps milliseconds.
    let drift = (loaded.expiry_date - expiry).abs();
    assert!(drift < time::Duration::milliseconds(1), "{drift}");

    // Keyed by SHA-256 of the id; the id itself is no key.
    use sha2::Digest;
    let id_bytes = record.id.0.to_le_bytes();
    let now = chrono::Utc::now();
    let by_hash = test_db
        .db
        .load_session(&sha2::Sha256::digest(id_bytes), now)
        .await;
    assert!(by_hash.unwrap().is_some());
    assert!(
        test_db
            .db
            .load_session(&id_bytes, now)
            .await
            .unwrap()
            .is_none()
    );

    restarted.delete(&record.id).await.unwrap();
    assert!(store.load(&record.id).await.unwrap().is_none());
    let mut expired = Record {
        id: Id::default(),
        data: Default::default(),
        expiry_date: time::OffsetDateTime::now_utc() - time::Duration::seconds(1),
    };
    store.create(&mut expired).await.unwrap();
    assert!(store.load(&expired.id).await.unwrap().is_none(), "expired");
    // A deleted session is not brought back by a late save (a request in flight on
    // an id that sign-out or rotation removed).
    let mut live = Record {
        id: Id::default(),
        data: Default::default(),
        expiry_date: expiry,
    };
    store.create(&mut live).await.unwrap();
    store.delete(&live.id).await.unwrap();
    store.save(&live).await.unwrap();
    assert!(
        store.load(&live.id).await.unwrap().is_none(),
        "stays deleted"
    );
}
vexil_testkit::both!(sessions_persist_by_id_hash);
