//! Flips per second through `vexil-app` (targets, as in BENCHMARKS.md: ≥ 2,000/s on SQLite WAL,
//! ≥ 1,000/s on PostgreSQL), with one writer and with 8 concurrent writers on
//! different flags. Each flip is a whole audited transaction: read, resolve, write
//! the audit row and the flag row, commit (durably: SQLite `synchronous=FULL`).
//!
//! Baseline in the same run: the same database's bare write transaction (`BEGIN`,
//! one audit row, `COMMIT`), the floor any audited change pays.
//!
//! The app runs as `vexil serve` does: with a secret key (every audit row carries its
//! proof) and a task sealing the audit log into its hash chain every second. The
//! `_unsealed` functions run without either, to show what the audit chain costs a
//! flip (docs/audit-integrity.md).
//!
//! `cargo bench -p vexil-app --bench flip` (needs the local PostgreSQL, as the tests do)

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use secrecy::SecretString;
use vexil_app::{Actor, Admin, App, Flip, SecretKey, StepUp};
use vexil_core::audit::Via;
use vexil_core::{Clock, Env, EnvSnapshot, Envs, FlagKey, FlagSet, Role};
use vexil_store::{Backend, NewAudit};
use vexil_testkit::{TestClock, TestDb};

/// Eight flags of the example file, one per concurrent writer.
const FLAGS: [&str; 8] = [
    "search_typo_tolerance",
    "dark_mode",
    "onboarding_checklist_v2",
    "support_chat_widget",
    "csv_export_streaming",
    "search_index_v3",
    "email_digest_batching",
    "api_rate_limit_strict",
];

struct Bench {
    app: Arc<App>,
    /// The same database without a secret key and with nothing sealing.
    unsealed: Arc<App>,
    actor: Actor,
    sealer: tokio::task::JoinHandle<()>,
    _test_db: TestDb,
}

async fn setup(backend: Backend) -> Bench {
    let test_db = TestDb::new(backend).await;
    let flags = FlagSet::parse(
        "feature_flags.yaml",
        include_bytes!("../../../examples/feature_flags.yaml"),
    )
    .unwrap();
    let app = |db| {
        App::new(
            db,
            flags.clone(),
            Envs::runbook(),
            None,
            EnvSnapshot::default(),
            Arc::new(TestClock::fixed()),
        )
    };
    let unsealed = Arc::new(app(test_db.db.clone()));
    let app = Arc::new(app(test_db.db.clone()).with_secret_key(SecretKey::generate()));
    let sealing = app.clone();
    let sealer = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            sealing.seal_audit().await.unwrap();
        }
    });
    let password = SecretString::from("a long enough password");
    app.add_user(Admin::Cli, "bench", Role::Superadmin, &password)
        .await
        .unwrap();
    let actor = app.actor("bench").await.unwrap();
    Bench {
        app,
        unsealed,
        actor,
        sealer,
        _test_db: test_db,
    }
}

/// `flips` flips of `flag`, alternating on and off from its current value.
async fn flip_many(app: &App, actor: &Actor, flag: &'static str, flips: u64) {
    // The value in force: the row if there is one, else the YAML default.
    let row = app
        .db()
        .flag_rows()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.flag_key == flag && r.env == "prod");
    let mut on = row.map_or_else(|| app.flags().get(flag).unwrap().default(), |r| r.value);
    let key = FlagKey::parse(flag).unwrap();
    for _ in 0..flips {
        on = !on;
        let flip = Flip {
            flag: &key,
            env: &Env::PROD,
            expected_from: None,
            to: on,
            reason: None,
            via: Via::Cli,
        };
        app.flip(actor, &flip, StepUp::None).await.unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let name = format!("{backend:?}").to_lowercase();
        let setup = runtime.block_on(setup(backend));
        let mut group = c.benchmark_group(format!("flip/{name}"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(10));

        group.bench_function("baseline_audited_write_tx", |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let mut tx = setup.app.db().begin_write().await.unwrap();
                        let audit = NewAudit {
                            created_at: TestClock::fixed().now(),
                            admin_id: Some(setup.actor.id()),
                            action: "bench.baseline",
                            target_type: "bench",
                            target_id: "baseline".to_owned(),
                            payload: serde_json::json!({}),
                        };
                        tx.append_audit(&audit).await.unwrap();
                        tx.commit().await.unwrap();
                    }
                    started.elapsed()
                })
            });
        });
        for (suffix, app) in [("", &setup.app), ("_unsealed", &setup.unsealed)] {
            group.bench_function(format!("one_writer{suffix}"), |b| {
                b.iter_custom(|iters| {
                    runtime.block_on(async {
                        let started = Instant::now();
                        flip_many(app, &setup.actor, FLAGS[0], iters).await;
                        started.elapsed()
                    })
                });
            });
            group.bench_function(format!("eight_writers{suffix}"), |b| {
                b.iter_custom(|iters| {
                    runtime.block_on(async {
                        let per_writer = iters.div_ceil(8);
                        let started = Instant::now();
                        let writers: Vec<_> = FLAGS
                            .into_iter()
                            .map(|flag| {
                                let app = app.clone();
                                let actor = setup.actor.clone();
                                tokio::spawn(async move {
                                    flip_many(&app, &actor, flag, per_writer).await;
                                })
                            })
                            .collect();
                        for writer in writers {
                            writer.await.unwrap();
                        }
                        // Per flip, as the other two functions report.
                        started
                            .elapsed()
                            .mul_f64(iters as f64 / (per_writer * 8) as f64)
                    })
                });
            });
        }
        group.finish();
        setup.sealer.abort();
        drop(setup);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
