//! What promotion costs through `vexil-app` (no target is set; these are the
//! figures an operator sizing the expiry job or scripting promotions would ask for):
//!
//! - a whole promotion, mark → approve → promote (three audited transactions, the
//!   last writing the prod row, its flip row and the promoted row), against a flip
//!   of the same flag (one audited transaction) measured in the same run;
//! - one round of the expiry job (`expire_due`) with 100 open promotions, none due:
//!   what every server pays each minute.
//!
//! `cargo bench -p vexil-app --bench promotion` (needs the local PostgreSQL, as the
//! tests do)

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use secrecy::SecretString;
use vexil_app::{Actor, Admin, App, Flip, PromoteRequest, StepUp};
use vexil_core::audit::Via;
use vexil_core::{EnvSnapshot, Envs, FlagKey, FlagSet, Role};
use vexil_store::Backend;
use vexil_testkit::{TestClock, TestDb};

/// Open promotions in the expiry round.
const OPEN: usize = 100;

struct Bench {
    app: App,
    actor: Actor,
    _test_db: TestDb,
}

/// 100 low-risk flags with no soak, `f000` … `f099`, and one to cycle, `cycled`.
fn flags() -> FlagSet {
    let mut yaml = String::from(
        "cycled:\n  default: false\n  soak_period_hours: 0\n  description: d\n  risk: low\n",
    );
    for i in 0..OPEN {
        yaml.push_str(&format!(
            "f{i:03}:\n  default: false\n  soak_period_hours: 0\n  description: d\n  risk: low\n"
        ));
    }
    FlagSet::parse("bench.yaml", yaml.as_bytes()).unwrap()
}

async fn setup(backend: Backend) -> Bench {
    let test_db = TestDb::new(backend).await;
    let app = App::new(
        test_db.db.clone(),
        flags(),
        Envs::runbook(),
        None,
        EnvSnapshot::default(),
        Arc::new(TestClock::fixed()),
    );
    let password = SecretString::from("a long enough password");
    app.add_user(Admin::Cli, "bench", Role::Superadmin, &password)
        .await
        .unwrap();
    let actor = app.actor("bench").await.unwrap();
    Bench {
        app,
        actor,
        _test_db: test_db,
    }
}

async fn flip(app: &App, actor: &Actor, flag: &str, env: &str, to: bool) {
    let flip = Flip {
        flag: &FlagKey::parse(flag).unwrap(),
        env: &Envs::runbook().parse(env).unwrap(),
        expected_from: None,
        to,
        reason: None,
        via: Via::Cli,
    };
    app.flip(actor, &flip, StepUp::None).await.unwrap();
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let name = format!("{backend:?}").to_lowercase();
        let setup = runtime.block_on(async {
            let setup = setup(backend).await;
            // 100 open promotions, none due: each flag on in staging, marked.
            for i in 0..OPEN {
                let flag = format!("f{i:03}");
                flip(&setup.app, &setup.actor, &flag, "staging", true).await;
                setup
                    .app
                    .mark_promote(&setup.actor, &FlagKey::parse(&flag).unwrap(), Via::Cli)
                    .await
                    .unwrap();
            }
            flip(&setup.app, &setup.actor, "cycled", "staging", true).await;
            setup
        });
        let (app, actor) = (&setup.app, &setup.actor);
        let mut group = c.benchmark_group(format!("promotion/{name}"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(10));

        group.bench_function("baseline_flip", |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let started = Instant::now();
                    for i in 0..iters {
                        flip(app, actor, "cycled", "prod", i % 2 == 0).await;
                    }
                    let elapsed = started.elapsed();
                    if iters % 2 == 1 {
                        flip(app, actor, "cycled", "prod", false).await;
                    }
                    elapsed
                })
            });
        });
        group.bench_function("mark_approve_promote", |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut measured = Duration::ZERO;
                    for _ in 0..iters {
                        let started = Instant::now();
                        let id = app
                            .mark_promote(actor, &FlagKey::parse("cycled").unwrap(), Via::Cli)
                            .await
                            .unwrap()
                            .record
                            .id;
                        app.approve(actor, id, Via::Cli).await.unwrap();
                        let request = PromoteRequest {
                            confirmation: None,
                            via: Via::Cli,
                        };
                        app.promote(actor, id, &request, StepUp::None)
                            .await
                            .unwrap();
                        measured += started.elapsed();
                        // Back off in prod for the next round, outside the clock.
                        flip(app, actor, "cycled", "prod", false).await;
                    }
                    measured
                })
            });
        });
        group.bench_function("expiry_round_100_open_none_due", |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let expired = app.expire_due(app.now()).await.unwrap();
                        assert!(expired.is_empty());
                    }
                    started.elapsed()
                })
            });
        });
        group.finish();
        drop(setup);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
