//! `wsreplay split` and `wsreplay merge`: a long capture cut into recordings that
//! replay on their own, and the files of several recorders put back into one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wsreplay::config::Route;
use wsreplay::demo::agent::{self, AgentKind};
use wsreplay::demo::frontend::{self, FrontendOptions};
use wsreplay::record::proxy::{Proxy, ProxyConfig};
use wsreplay::recording::sink::Output;
use wsreplay::recording::{Dir, Record, Recording};
use wsreplay::structure::Structure;

use crate::support::*;

/// The files in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Runs `wsreplay split PATH --by BY --out-dir OUT EXTRA...`, which must succeed.
fn split(path: &Path, by: &str, out: &Path, extra: &[&str]) {
    let mut args = vec!["split", path.to_str().unwrap(), "--by", by];
    args.extend(["--out-dir", out.to_str().unwrap()]);
    args.extend(extra);
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

/// The client messages of `rec` on `route`, as JSON.
fn requests(rec: &Recording, route: &str) -> Vec<serde_json::Value> {
    let conns: Vec<u64> = rec
        .opens()
        .filter(|o| o.route == route)
        .map(|o| o.conn)
        .collect();
    rec.records
        .iter()
        .filter_map(|r| match r {
            Record::Message(m) if conns.contains(&m.conn) && m.dir == Dir::ClientToServer => {
                serde_json::from_str(m.body.as_text()?).ok()
            }
            _ => None,
        })
        .collect()
}

/// Ten users chatting at once, recorded compressed, split by session: ten compressed
/// recordings, each with one user's frontend connection and exactly the agent requests
/// its chats caused (the nlp queries carry that user's id), each replaying on its own
/// against the demo backend with its agents mocked with no problem; every agent
/// request of the capture is in exactly one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_users_split_by_session_replay_each_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.jsonl.zst");
    let chats = 2;
    let (whole, _) = record_demo_to(&path, 10, chats).await;
    let out = dir.path().join("sessions");
    split(&path, "session", &out, &[]);
    let files = files_in(&out);
    assert_eq!(files.len(), 10, "{files:?}");
    let mut all_requests = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("staging-session-0") && name.ends_with(".jsonl.zst"));
        let user = name
            .split("-user-")
            .nth(1)
            .unwrap()
            .trim_end_matches(".jsonl.zst");
        let rec = Recording::read(file).unwrap();
        assert!(rec.warnings.is_empty(), "{name}: {:?}", rec.warnings);
        let split = rec.header.split.as_ref().unwrap();
        assert_eq!(
            (split.by.as_str(), split.frontend.as_str()),
            ("session", "frontend")
        );
        assert_eq!(rec.header.sources[0].file, path.display().to_string());
        assert_eq!(rec.opens().filter(|o| o.route == "frontend").count(), 1);
        for agent in AGENTS {
            assert_eq!(requests(&rec, agent).len(), chats, "{name} {agent}");
            all_requests += chats;
        }
        for query in requests(&rec, "nlp") {
            assert_eq!(query["user_id"], user, "{name}: another user's query");
        }
        let (report, _) = replay_demo(&rec, |_| {}, vec![], None).await;
        assert!(report.clean(), "{name}:\n{}", report.render());
    }
    let whole_requests: usize = AGENTS.iter().map(|a| requests(&whole, a).len()).sum();
    assert_eq!(all_requests, whole_requests);
}

/// `--by user` puts every connection of a user in one file (named after the user), and
/// `--by connection` one frontend connection per file with nothing of the agent hops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_by_user_groups_a_users_connections_and_by_connection_keeps_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cap.jsonl");
    let demo = wsreplay::demo::recorded::RecordedDemo::start(false, Output::File(path.clone()))
        .await
        .unwrap();
    for user in ["alice", "bob", "alice"] {
        assert!(demo.run_frontend(user, 1).await.unwrap().passed());
    }
    assert!(demo.stop().await.complete());
    let whole = Recording::read(&path).unwrap();

    let by_user = dir.path().join("users");
    split(&path, "user", &by_user, &[]);
    let files = files_in(&by_user);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["cap-user-alice.jsonl", "cap-user-bob.jsonl"]);
    let alice = Recording::read(&files[0]).unwrap();
    assert_eq!(alice.opens().filter(|o| o.route == "frontend").count(), 2);
    assert_eq!(requests(&alice, "nlp").len(), 2);
    let (report, _) = replay_demo(&alice, |_| {}, vec![], None).await;
    assert!(report.clean(), "{}", report.render());

    let by_conn = dir.path().join("conns");
    split(&path, "connection", &by_conn, &["--compress"]);
    let files = files_in(&by_conn);
    assert_eq!(files.len(), 3, "{files:?}");
    for (file, open) in files
        .iter()
        .zip(whole.opens().filter(|o| o.route == "frontend"))
    {
        assert!(file.to_string_lossy().ends_with(".jsonl.zst"));
        let rec = Recording::read(file).unwrap();
        assert_eq!(rec.routes(), ["frontend"]);
        let own: Vec<&Record> = whole
            .records
            .iter()
            .filter(|r| r.conn() == Some(open.conn) || r.conn().is_none())
            .collect();
        assert_eq!(rec.records.iter().collect::<Vec<_>>(), own);
    }
}

/// Bad input is named by file and line, for split and for merge.
#[test]
fn malformed_input_is_named_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    let mut text = std::fs::read_to_string(CHECKOUT).unwrap();
    let third = text.match_indices('\n').nth(2).unwrap().0;
    text.insert_str(third + 1, "{\"kind\":\"message\",\"oops\n");
    std::fs::write(&bad, text).unwrap();
    let out = dir.path().join("out");
    let (code, _, stderr) = run(&[
        "split",
        bad.to_str().unwrap(),
        "--by",
        "session",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains(&format!("{}:4:", bad.display())),
        "{stderr}"
    );
    let merged = dir.path().join("m.jsonl");
    let (code, _, stderr) = run(&[
        "merge",
        CHECKOUT,
        bad.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains(&format!("{}:4:", bad.display())),
        "{stderr}"
    );
    assert!(!merged.exists());
}

fn route(name: &str, upstream: &str) -> Route {
    Route::new(name, "127.0.0.1:0", upstream).unwrap()
}

/// Three recorders on one run of the demo: one on every hop, and behind it one on the
/// frontend hop only and one on the agent hops only. Merging the two halves gives the
/// snapshot of the recorder that saw everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merging_the_frontend_and_agent_recorders_gives_the_whole_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let [all_path, front_path, agents_path, merged] =
        ["all", "front", "agents", "merged"].map(|n| dir.path().join(format!("{n}.jsonl")));
    let local: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut agents = Vec::new();
    for kind in AgentKind::all() {
        agents.push(
            agent::spawn(kind, local, Duration::from_millis(5))
                .await
                .unwrap(),
        );
    }
    let agent_routes = AgentKind::all()
        .iter()
        .zip(&agents)
        .map(|(k, a)| route(k.name(), &a.url()))
        .collect();
    let agents_proxy = Proxy::start(ProxyConfig::new(
        agent_routes,
        Output::File(agents_path.clone()),
    ))
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind(local).await.unwrap();
    let backend_url = format!("ws://{}", listener.local_addr().unwrap());
    let front_proxy = Proxy::start(ProxyConfig::new(
        vec![route("frontend", &backend_url)],
        Output::File(front_path.clone()),
    ))
    .await
    .unwrap();
    let via = |p: &Proxy, r: &str| format!("ws://{}", p.addr(r).unwrap());
    let mut all_routes = vec![route("frontend", &via(&front_proxy, "frontend"))];
    all_routes.extend(AGENTS.map(|a| route(a, &via(&agents_proxy, a))));
    let all_proxy = Proxy::start(ProxyConfig::new(all_routes, Output::File(all_path.clone())))
        .await
        .unwrap();
    let backend = wsreplay::demo::backend::spawn_on(
        wsreplay::demo::backend::BackendConfig {
            nlp_url: via(&all_proxy, "nlp"),
            data_url: via(&all_proxy, "data"),
            viz_url: via(&all_proxy, "viz"),
            regression_events: Vec::new(),
            agent_timeout: wsreplay::demo::DEFAULT_AGENT_TIMEOUT,
            reply_delay: Duration::ZERO,
            mutate: None,
            progress: None,
        },
        listener,
    )
    .unwrap();
    let users = (0..3).map(|i| {
        let mut options = FrontendOptions::new(format!(
            "{}/ws?user_id=user{i}",
            via(&all_proxy, "frontend")
        ));
        options.chats = 2;
        async move { frontend::run(&options).await.unwrap() }
    });
    for report in futures_util::future::join_all(users).await {
        assert!(report.passed(), "{:?}", report.problems);
    }
    backend.shutdown().await;
    for a in agents {
        a.shutdown().await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for proxy in [all_proxy, front_proxy, agents_proxy] {
        assert!(proxy.stop().await.complete());
    }
    let (code, stdout, stderr) = run(&[
        "merge",
        front_path.to_str().unwrap(),
        agents_path.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let merged = Recording::read(&merged).unwrap();
    assert!(merged.warnings.is_empty(), "{:?}", merged.warnings);
    let sources: Vec<&str> = merged
        .header
        .sources
        .iter()
        .map(|s| s.file.as_str())
        .collect();
    assert_eq!(
        sources,
        [front_path.to_str().unwrap(), agents_path.to_str().unwrap()]
    );
    let all = Recording::read(&all_path).unwrap();
    assert_eq!(merged.opens().count(), all.opens().count());
    let ids: std::collections::BTreeSet<u64> = merged.opens().map(|o| o.conn).collect();
    assert_eq!(ids.len(), merged.opens().count(), "connection ids collide");
    let counts = |r: &Recording| {
        let mut c: BTreeMap<String, usize> = BTreeMap::new();
        for o in r.opens() {
            *c.entry(o.route.clone()).or_default() += 1;
        }
        c
    };
    assert_eq!(counts(&merged), counts(&all));
    assert_eq!(
        Structure::of(&merged).render(),
        Structure::of(&all).render()
    );
}

/// A demo capture rotated every 4 KiB: every file reads on its own (`show` too), and
/// merging the files gives back whole connections (a `continued` connection joins its
/// beginning) that replay with no problem and split by session as the capture would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_files_read_alone_and_merge_back_into_whole_connections() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("cap.jsonl");
    let demo = wsreplay::demo::recorded::RecordedDemo::start_with(
        false,
        Output::File(base.clone()),
        |c| c.rotate = Some("4KB".parse().unwrap()),
    )
    .await
    .unwrap();
    let users = (0..3).map(|i| {
        let demo = &demo;
        async move { demo.run_frontend(&format!("user{i}"), 3).await.unwrap() }
    });
    futures_util::future::join_all(users).await;
    let outcome = demo.stop().await;
    assert!(outcome.complete());
    let files = outcome.files.clone();
    assert!(files.len() >= 3, "{files:?}");
    let mut continued = 0;
    for file in &files {
        let rec = Recording::read(file).unwrap();
        assert!(
            rec.warnings.is_empty(),
            "{}: {:?}",
            file.display(),
            rec.warnings
        );
        continued += rec
            .opens()
            .filter(|o| o.continued && o.route == "frontend")
            .count();
        let (code, stdout, stderr) = run(&["show", file.to_str().unwrap()]);
        assert_eq!(code, 0, "{stdout}{stderr}");
    }
    assert!(continued > 0, "no frontend connection spanned two files");
    let merged = dir.path().join("whole.jsonl");
    let mut args = vec!["merge"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    args.extend(["--out", merged.to_str().unwrap()]);
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let whole = Recording::read(&merged).unwrap();
    assert!(whole.warnings.is_empty(), "{:?}", whole.warnings);
    assert_eq!(whole.opens().filter(|o| o.route == "frontend").count(), 3);
    assert!(whole.opens().all(|o| !o.continued));
    let (report, _) = replay_demo(&whole, |_| {}, vec![], None).await;
    assert!(report.clean(), "{}", report.render());
    let out = dir.path().join("sessions");
    split(&merged, "session", &out, &[]);
    assert_eq!(files_in(&out).len(), 3);
}

/// A file that begins in the middle of a connection (as the next file of a rotated
/// recording does, cut here just after a chat so that it begins with that chat's
/// answers) reads with `show` and replays with no problem: the continued connection is
/// opened afresh and plays from where the file starts, waiting for none of the answers
/// to what was asked in the previous file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continued_connection_replays_from_where_its_file_starts() {
    let (whole, _) = record_demo(1, 3).await;
    let front = whole.opens().find(|o| o.route == "frontend").unwrap().conn;
    let chats: Vec<usize> = whole
        .records
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            matches!(r, Record::Message(m) if m.conn == front
                && m.dir == Dir::ClientToServer
                && m.body.as_text().is_some_and(|t| t.contains(r#""type":"chat""#)))
        })
        .map(|(p, _)| p)
        .collect();
    let cut = chats[1] + 1;
    let mut records: Vec<Record> = whole.records[..cut]
        .iter()
        .filter_map(|r| match r {
            Record::Open(o) => {
                let mut o = o.clone();
                o.continued = true;
                Some(Record::Open(o))
            }
            _ => None,
        })
        .collect();
    records.extend(whole.records[cut..].iter().cloned());
    assert!(matches!(&records[records.len() - 1], Record::Finish(_)));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("second.jsonl");
    let second = Recording {
        path: path.clone(),
        records,
        ..whole
    };
    write_recording(&second, &path);
    let (code, stdout, stderr) = run(&["show", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.is_empty() && stdout.contains("chat ×1"),
        "{stdout}{stderr}"
    );
    let second = Recording::read(&path).unwrap();
    let (report, _) = replay_demo(&second, |c| c.step_timeout = STEP_TIMEOUT, vec![], None).await;
    assert!(report.clean(), "{}", report.render());
}
