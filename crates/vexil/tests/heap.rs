//! What the library costs in heap, measured with dhat's counting allocator (a test
//! binary of its own, since the allocator is the whole binary's): `is_on` allocates
//! nothing once warm, and a handle with 1,000 flags holds under 2 MB (BENCHMARKS.md).
//! Figures are printed with `--nocapture` and kept in BENCHMARKS.md:
//!
//! `cargo test -p vexil --test heap -- --nocapture`

use vexil::Flags;
use vexil_core::{EnvSnapshot, FlagDecl, FlagKey, FlagSet, Risk};
use vexil_store::Backend;
use vexil_testkit::TestDb;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const FLAGS: usize = 1000;

fn flag_set() -> FlagSet {
    FlagSet::from_decls((0..FLAGS).map(|i| {
        FlagDecl::new(
            FlagKey::parse(&format!("feature_number_{i:04}")).unwrap(),
            i % 2 == 0,
            24,
            format!("Feature number {i}, as a real description would say in a line"),
            Risk::Low,
        )
        .unwrap()
    }))
    .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn is_on_allocates_nothing_and_a_thousand_flags_fit_in_two_megabytes() {
    let _profiler = dhat::Profiler::builder().testing().build();

    // (Even-numbered flags default to on.) No allocation per call. Measured first, with no database at all: a database's
    // pool threads allocate on their own schedule, and would be counted too.
    let dir = tempfile::tempdir().unwrap();
    let offline = Flags::builder()
        .env("prod")
        .flag_set(flag_set())
        .database_url(format!("sqlite://{}/none/vexil.db", dir.path().display()))
        // Long enough for the first attempt to fail before measuring: its worker
        // thread's allocations would be counted too.
        .start_timeout(std::time::Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let typed = offline.flag("feature_number_0616");
    let warm = offline.is_on("feature_number_0616") && typed.is_on();
    let blocks = dhat::HeapStats::get().total_blocks;
    let mut on = 0;
    for i in 0..10_000 {
        let key = if i % 2 == 0 {
            "feature_number_0616"
        } else {
            "feature_number_0002"
        };
        if offline.is_on(key) && typed.is_on() {
            on += 1;
        }
    }
    let allocated = dhat::HeapStats::get().total_blocks - blocks;
    assert!(warm && on == 10_000);
    assert_eq!(
        allocated, 0,
        "is_on allocated {allocated} times in 10,000 calls"
    );
    drop((typed, offline));

    // The heap a handle holds: its snapshot, rows, receipts, cells and declarations,
    // and its share of the runtime's and the pool's structures.
    let test_db = TestDb::new(Backend::Sqlite).await;
    // A row for every flag in prod: the snapshot's rows map is full too.
    let values: Vec<String> = (0..FLAGS)
        .map(|i| format!("('feature_number_{i:04}', 'prod', {})", i % 2))
        .collect();
    test_db
        .execute(&format!(
            "INSERT INTO console_feature_flags (flag_key, env, value) VALUES {}",
            values.join(", ")
        ))
        .await
        .unwrap();
    let before = dhat::HeapStats::get().curr_bytes;
    let declarations = flag_set();
    let flags = Flags::builder()
        .env("prod")
        .flag_set(declarations)
        .env_vars(EnvSnapshot::capture([(
            "FLAG_CONSOLE_FEATURE_FLAGS_DB",
            "1",
        )]))
        .database_url(test_db.url_string())
        .start()
        .await
        .unwrap();
    flags
        .watch_health()
        .wait_for(|h| h.source_up)
        .await
        .unwrap();
    assert!(
        flags.is_on("feature_number_0001"),
        "the row, not the YAML default"
    );
    let held = dhat::HeapStats::get().curr_bytes - before;
    println!("a handle with {FLAGS} flags and {FLAGS} rows holds {held} bytes of heap");
    assert!(held < 2 * 1024 * 1024, "{held} bytes");
}
