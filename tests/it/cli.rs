//! The command line as a user meets it: `show` output and errors on bad files.

use std::process::Command;

use crate::support::bin;

const HEADER: &str = r#"{"format":"wsreplay-recording","version":"1.0","tool":"wsreplay 0.1.0","started_unix_ms":0}"#;

fn write(
    dir: &tempfile::TempDir,
    name: &str,
    lines: &[&str],
    terminated: bool,
) -> std::path::PathBuf {
    let path = dir.path().join(name);
    let mut text = lines.join("\n");
    if terminated {
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn show(path: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .arg("show")
        .arg(path)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const OPEN: &str = r#"{"kind":"open","t_us":10,"route":"frontend","conn":1,"client":"127.0.0.1:5000","upstream":"ws://127.0.0.1:18000","request":"GET /ws?user_id=x HTTP/1.1","headers":[],"status":101,"response_headers":[]}"#;
const CHAT: &str = r#"{"kind":"message","t_us":20,"conn":1,"dir":"c2s","op":"text","text":"{\"type\":\"chat\",\"text\":\"hi\"}","frames":1}"#;
const STARTED: &str = r#"{"kind":"message","t_us":30,"conn":1,"dir":"s2c","op":"text","text":"{\"type\":\"agent_started\"}","frames":1,"compressed":true}"#;
const CLOSE: &str = r#"{"kind":"close","t_us":40,"conn":1,"dir":"c2s","code":1000,"reason":""}"#;
const END: &str = r#"{"kind":"end","t_us":50,"conn":1,"how":"eof","by":"upstream"}"#;
const FINISH: &str = r#"{"kind":"finish","t_us":60,"complete":true,"lost":0}"#;

#[test]
fn show_summarises_and_prints_a_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "ok.jsonl",
        &[HEADER, OPEN, CHAT, STARTED, CLOSE, END, FINISH],
        true,
    );
    let (code, out, _) = show(&path, &[]);
    assert_eq!(code, 0);
    insta::assert_snapshot!(out.replace(&dir.path().display().to_string(), "DIR"), @r"
    DIR/ok.jsonl: wsreplay-recording 1.0 (wsreplay 0.1.0), 1 connection(s) on 1 route(s), 2 message(s)

    route frontend → ws://127.0.0.1:18000
      conn 1  /ws?user_id=x  from 127.0.0.1:5000  status 101  0.000 s
        c2s    1 message(s): chat ×1
        s2c    1 message(s): agent_started ×1
        close: c2s 1000; ended: ABNORMAL eof without close handshake by upstream
    ");
    let (code, out, _) = show(&path, &["--timeline"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!(out, @r#"
        0.000010  frontend#1     open   /ws?user_id=x from 127.0.0.1:5000 → ws://127.0.0.1:18000 status 101
        0.000020  frontend#1     c2s    chat {"type":"chat","text":"hi"}
        0.000030  frontend#1     s2c    agent_started {"type":"agent_started"}
        0.000040  frontend#1     c2s    close 1000 
        0.000050  frontend#1     end    eof without close handshake by upstream
        0.000060                 finish complete=true lost=0
    "#);
}

#[test]
fn malformed_lines_exit_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&[HEADER, OPEN, "{not json", FINISH], ":3: "),
        (
            &[
                HEADER,
                OPEN,
                r#"{"kind":"message","t_us":1,"conn":1,"dir":"up","op":"text","text":"x","frames":1}"#,
            ],
            ":3: unknown variant `up`",
        ),
        (
            &[
                HEADER,
                r#"{"kind":"message","t_us":1,"conn":9,"dir":"c2s","op":"text","text":"x","frames":1}"#,
            ],
            ":2: record for connection 9",
        ),
        (&[r#"{"hello":"world"}"#], ":1: not a wsreplay recording"),
        (
            &[
                r#"{"format":"wsreplay-recording","version":"2.0","tool":"wsreplay 9.0.0","started_unix_ms":0}"#,
            ],
            "Upgrade wsreplay",
        ),
    ];
    for (i, (lines, expected)) in cases.iter().enumerate() {
        let path = write(&dir, &format!("bad{i}.jsonl"), lines, true);
        let (code, _, err) = show(&path, &[]);
        assert_eq!(code, 2, "case {i}: {err}");
        assert!(
            err.contains(&format!("bad{i}.jsonl")) && err.contains(expected),
            "case {i}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn a_torn_last_line_is_a_warning_and_the_rest_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "torn.jsonl",
        &[
            HEADER,
            OPEN,
            CHAT,
            r#"{"kind":"message","t_us":30,"conn":1,"di"#,
        ],
        false,
    );
    let (code, out, _) = show(&path, &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains("warning: ") && out.contains("torn.jsonl:4: torn last line ignored"),
        "{out}"
    );
    assert!(out.contains("chat ×1"), "{out}");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let (code, _, err) = show(std::path::Path::new("/nonexistent/x.jsonl"), &[]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/x.jsonl: cannot read"), "{err}");
}
