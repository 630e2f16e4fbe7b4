//! What reviewers look at, in a real browser: `show --mermaid` parsed and drawn by
//! Mermaid itself, and the HTML report drawn by headless Chromium. These tests need
//! /usr/bin/chromium (and, for Mermaid, `scripts/browser-tools.sh` run once); without
//! them they print why and pass without checking anything.

use std::path::{Path, PathBuf};

use crate::peers::chromium::{Cdp, Chromium};
use crate::support::*;

/// mermaid.min.js as `scripts/browser-tools.sh` installs it, or `WSREPLAY_MERMAID_JS`.
fn mermaid_js() -> Option<PathBuf> {
    let path = std::env::var_os("WSREPLAY_MERMAID_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/browser-tools/node_modules/mermaid/dist/mermaid.min.js")
        });
    path.exists().then_some(path)
}

fn skip(why: &str) {
    eprintln!("SKIPPED: {why}");
}

/// Runs headless Chromium on a local page with extra arguments; returns its stdout.
async fn headless(chromium: &Path, page: &Path, args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = guard(
        tokio::process::Command::new(chromium)
            .args(HEADLESS)
            .args([
                "--allow-file-access-from-files",
                "--virtual-time-budget=10000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(args)
            .arg(format!("file://{}", page.display()))
            .output(),
    )
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Renders a diagram with Mermaid in Chromium; returns the page's DOM afterwards.
async fn mermaid_dom(chromium: &Path, mermaid: &Path, diagram: &str, dir: &Path) -> String {
    let page = dir.join("mermaid.html");
    let html = format!(
        r#"<!doctype html><html><head><title>pending</title><script src="file://{}"></script></head><body><div id="out"></div><script>
mermaid.initialize({{ startOnLoad: false }});
const text = {};
mermaid.parse(text)
  .then(() => mermaid.render("diagram", text))
  .then(r => {{ document.getElementById("out").innerHTML = r.svg; document.title = "RENDERED"; }})
  .catch(e => {{ document.title = "MERMAID-ERROR"; document.getElementById("out").textContent = String(e); }});
</script></body></html>"#,
        mermaid.display(),
        serde_json::to_string(diagram).unwrap()
    );
    std::fs::write(&page, html).unwrap();
    headless(chromium, &page, &["--dump-dom".into()]).await
}

#[tokio::test]
async fn show_mermaid_renders_in_mermaid_itself() {
    let (Some(chromium), Some(mermaid)) = (chromium(), mermaid_js()) else {
        return skip(
            "show --mermaid browser test needs /usr/bin/chromium and the mermaid npm package (run scripts/browser-tools.sh)",
        );
    };
    let dir = tempfile::tempdir().unwrap();
    // The repository's recording, with a fault record as a replay's capture has them.
    let mut rec = wsreplay::recording::Recording::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/recordings/checkout.jsonl"
    ))
    .unwrap();
    let data = rec.opens().find(|o| o.route == "data").unwrap().conn;
    let at = rec.records.len() / 2;
    rec.records.insert(
        at,
        wsreplay::recording::Record::Fault(wsreplay::recording::Fault {
            t_us: rec.records[at].t_us(),
            conn: data,
            dir: wsreplay::recording::Dir::ServerToClient,
            rule: "data:drop:sql_query_response".into(),
            action: "drop".into(),
            label: "sql_query_response".into(),
        }),
    );
    let file = dir.path().join("with-fault.jsonl");
    write_recording(&rec, &file);
    let out = std::process::Command::new(bin())
        .args(["show", "--mermaid"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let diagram = String::from_utf8(out.stdout).unwrap();
    assert!(diagram.contains("progress_update ×2"), "{diagram}");
    assert!(diagram.contains("Note over"), "{diagram}");

    let dom = mermaid_dom(&chromium, &mermaid, &diagram, dir.path()).await;
    assert!(dom.contains("<title>RENDERED</title>"), "{dom}");
    for text in [
        "frontend client",
        "nlp server",
        "sql_query_response",
        "progress_update ×2",
    ] {
        assert!(dom.contains(text), "{text} not drawn: {dom}");
    }
    // The same harness reports a diagram Mermaid cannot parse.
    let broken = diagram.replace("->>", "-->>>");
    let dom = mermaid_dom(&chromium, &mermaid, &broken, dir.path()).await;
    assert!(dom.contains("<title>MERMAID-ERROR</title>"), "{dom}");
}

#[tokio::test]
async fn the_html_report_of_a_failing_check_renders_in_chromium() {
    let Some(chromium) = chromium() else {
        return skip(
            "HTML report browser test needs /usr/bin/chromium (apt-get install -y chromium)",
        );
    };
    let p = crate::check::snapshotted_project().await;
    let dir = p.path();
    let out = crate::check::check_with(
        dir,
        " --regression",
        &["--check", "--html", "report.html"],
        false,
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", crate::check::text(&out));
    let report = dir.join("report.html");
    let html = std::fs::read_to_string(&report).unwrap();
    // Self-contained: nothing to fetch.
    for fetch in ["src=", "href=\"http", "@import", "url(http"] {
        assert!(
            !html.contains(fetch),
            "the report fetches something: {fetch}"
        );
    }

    let dom = headless(&chromium, &report, &["--dump-dom".into()]).await;
    for expected in [
        "recordings/checkout.jsonl — <span class=\"fail\">STRUCTURE DIFFERS</span>",
        "<td class=\"fail\">FAIL</td>",
        "looks like `payload` moved to `data`",
        "<mark>payload</mark>",
        "<mark>data</mark>",
        "<svg",
        "first diff ▶",
        "build under test",
    ] {
        assert!(
            dom.contains(expected),
            "{expected:?} not in the rendered page"
        );
    }
    // The first differing message is the first tool_executing.
    let marked = dom.split("first diff ▶").nth(1).unwrap();
    let label = marked
        .split("</text>")
        .find(|t| t.contains("tool_"))
        .unwrap_or("");
    assert!(label.ends_with("tool_executing"), "{label}");

    let png = dir.join("report.png");
    headless(
        &chromium,
        &report,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1400,2000".into(),
        ],
    )
    .await;
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
    // A blank page compresses to a few KiB; text, coloured diff lines and the diagram
    // do not.
    assert!(
        bytes.len() > 60_000,
        "screenshot only {} bytes",
        bytes.len()
    );
    if let Some(keep) = std::env::var_os("WSREPLAY_KEEP_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }
}

/// Opens `url` in a new page of `browser` and returns the text of its element `#log`
/// once it contains `until` (or after 20 s).
pub async fn page_text(browser: &Chromium, url: &str, until: &str) -> String {
    let mut cdp = Cdp::connect(&browser.url).await;
    let session = cdp.open_page(url).await;
    let read = serde_json::json!({
        "expression": "document.getElementById('log') ? document.getElementById('log').innerText : ''",
        "returnByValue": true,
    });
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let v = cdp
            .call("Runtime.evaluate", read.clone(), Some(&session))
            .await;
        let text = v["result"]["value"].as_str().unwrap_or("").to_string();
        if text.contains(until) || tokio::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A page that sends one chat on `url` and lists the types of what comes back.
fn chat_page(dir: &Path, url: &str) -> String {
    let page = dir.join(format!("chat-{}.html", url.len()));
    std::fs::write(&page, chat_html(url)).unwrap();
    format!("file://{}", page.display())
}

/// The HTML of [`chat_page`].
pub fn chat_html(url: &str) -> String {
    format!(
        r#"<!doctype html><html><body><div id="log"></div><script>
const log = (t) => {{ const d = document.createElement('div'); d.textContent = t; document.getElementById('log').appendChild(d); }};
const ws = new WebSocket({url:?});
ws.onopen = () => ws.send(JSON.stringify({{type: 'chat', message_id: 'msg_page1', text: 'What did EC2 cost last month?'}}));
ws.onmessage = (e) => {{ const m = JSON.parse(e.data); log(m.type); if (m.type === 'agent_completed' || m.type === 'error') {{ log('DONE'); ws.close(); }} }};
ws.onerror = () => log('SOCKET ERROR');
</script></body></html>"#
    )
}

/// `wsreplay mock` stands in for the demo backend, stopped, for a real page in headless
/// Chromium recorded once against it: the page gets the recorded answers, and the mock
/// exits by itself once the recorded connection has been served (`--once`).
#[tokio::test]
async fn wsreplay_mock_serves_a_browser_page_with_the_backend_stopped() {
    let Some(browser) = Chromium::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("page.jsonl");
    let demo = wsreplay::demo::recorded::RecordedDemo::start(
        false,
        wsreplay::recording::sink::Output::File(file.clone()),
    )
    .await
    .unwrap();
    let live = page_text(
        &browser,
        &chat_page(dir.path(), &demo.frontend_url("page")),
        "DONE",
    )
    .await;
    assert!(live.contains("agent_completed"), "{live}");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(demo.stop().await.complete());

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mock = tokio::process::Command::new(bin())
        .arg("mock")
        .arg(&file)
        .args(["--route", &format!("frontend=127.0.0.1:{port}"), "--once"])
        .arg("--out")
        .arg(dir.path().join("served.jsonl"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Wait until it listens.
    guard(async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let url = format!("ws://127.0.0.1:{port}/ws?user_id=page");
    let mocked = page_text(&browser, &chat_page(dir.path(), &url), "DONE").await;
    drop(browser);
    assert_eq!(mocked, live);
    let out = guard(mock.wait_with_output()).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("mock frontend: 1 request(s), 1 answered"),
        "{stdout}"
    );
    assert!(stderr.contains("connection accepted"), "{stderr}");
}
