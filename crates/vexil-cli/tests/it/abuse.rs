//! `vexil serve` under abuse, measured from outside the process: 200 sign-in
//! attempts at once, each from an address of its own (so that no per-address limit
//! refuses them before the password check), keep the server's memory bounded.
//! Replayed: 120 such attempts took a server from 27 MiB to over 2 GiB, since each
//! argon2 check takes 19 MiB and nothing bounded how many ran at once. The figures
//! are in BENCHMARKS.md (`cargo xtask abuse-bench`); this asserts the bound loosely.

use std::net::IpAddr;

use vexil_store::Backend;
use vexil_testkit::TestDb;

use crate::serve::Server;
use crate::site::Site;

/// The bound the server's peak memory must stay under (BENCHMARKS.md measures a
/// release build well below it; this is a debug build).
const MAX_PEAK_MIB: f64 = 150.0;

fn peak_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_sign_ins_at_once_keep_memory_bounded() {
    let test_db = TestDb::new(Backend::Sqlite).await;
    let site = Site::new(test_db.url_string());
    site.dir.write(
        "feature_flags.yaml",
        "dark_mode:\n  default: false\n  description: Dark theme.\n  risk: low\n",
    );
    let server = Server::spawn(site.command(&["serve", "--bind", "127.0.0.1:0"]));
    let line = server.wait_for("vexil listening on http://");
    let address = line.rsplit("http://").next().unwrap().to_owned();
    let url = format!("http://{address}/console/sign-in");
    let mut forms = Vec::new();
    for i in 0..200 {
        let from: IpAddr = format!("127.0.0.{}", i + 2).parse().unwrap();
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(from)
            .build()
            .unwrap();
        let page = client.get(&url).send().await.unwrap().text().await.unwrap();
        let start = page.find("name=\"csrf\" value=\"").unwrap() + 19;
        let csrf = page[start..start + 64].to_owned();
        forms.push((client, csrf, format!("nobody{i}")));
    }
    let mut attempts = Vec::new();
    for (client, csrf, name) in forms {
        let url = url.clone();
        attempts.push(tokio::spawn(async move {
            let form = [
                ("csrf", csrf.as_str()),
                ("name", name.as_str()),
                ("password", "a wrong password"),
            ];
            let response = client.post(&url).form(&form).send().await.unwrap();
            let retry_after = response.headers().contains_key("retry-after");
            (response.status().as_u16(), retry_after)
        }));
    }
    let (mut checked, mut busy) = (0, 0);
    for attempt in attempts {
        match attempt.await.unwrap() {
            (401, _) => checked += 1,
            (503, true) => busy += 1,
            other => panic!("an attempt was answered {other:?}"),
        }
    }
    let peak = peak_mib(server.child.id());
    assert!(checked >= 2, "some attempts were checked ({checked})");
    assert!(
        busy >= 1,
        "the attempts beyond the queue were refused ({busy})"
    );
    assert_eq!(checked + busy, 200);
    assert!(
        peak <= MAX_PEAK_MIB,
        "peak memory {peak:.0} MiB under 200 sign-ins at once (bound {MAX_PEAK_MIB} MiB)"
    );
}
