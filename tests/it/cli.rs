//! The command line as a user meets it: `show` output and errors on bad files.

use std::process::Command;

use crate::support::{bin, run, CHECKOUT};

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
    let mut args = vec!["show", path.to_str().unwrap()];
    args.extend(extra);
    run(&args)
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

#[test]
fn review_asks_for_each_pending_snapshot_without_cargo_insta() {
    use wsreplay::structure::snapshot;
    let dir = tempfile::tempdir().unwrap();
    let snaps = dir.path().join("snapshots");
    let body = |t: &str| format!("## route f\n\n### s2c {t} ×1\ntype  \"{t}\"\n");
    let rec = std::path::Path::new("recordings/checkout.jsonl");
    snapshot::write(
        &snapshot::path_for(&snaps, "checkout"),
        rec,
        &body("payload"),
    )
    .unwrap();
    snapshot::write(
        &snapshot::new_path_for(&snaps, "checkout"),
        rec,
        &body("data"),
    )
    .unwrap();
    let mut child = std::process::Command::new(bin())
        .args(["review", "--snapshots"])
        .arg(&snaps)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(b"a\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("-### s2c payload ×1") && stdout.contains("+### s2c data ×1"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("accepted 1 (checkout), rejected 0, left pending 0\n"),
        "{stdout}"
    );
    let reviewed = snapshot::read(&snapshot::path_for(&snaps, "checkout"))
        .unwrap()
        .unwrap();
    assert!(reviewed.contains("s2c data"));
    assert!(!snapshot::new_path_for(&snaps, "checkout").exists());
}

#[test]
fn a_missing_file_is_named_once_with_its_reason_once() {
    let (code, _, err) = run(&["show", "nope.jsonl"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: nope.jsonl: cannot read: No such file or directory (os error 2)\n"
    );
}

#[test]
fn demo_refuses_a_directory_it_did_not_make_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("thesis.tex"), "years of work").unwrap();
    let (code, out, err) = run(&["demo", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(
        err,
        format!(
            "error: {} is not empty and is not a wsreplay demo directory; choose another --dir (nothing was deleted)\n",
            dir.path().display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("thesis.tex")).unwrap(),
        "years of work"
    );
}

/// Runs `wsreplay ARGS` with `stdin` as its input and its stdout closed by the reader
/// at once; returns its stderr after asserting it did not panic.
fn with_stdout_closed(args: &[&std::ffi::OsStr], stdin: &[u8]) -> String {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let _ = child.stdin.take().unwrap().write_all(stdin);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
    err
}

#[test]
fn a_closed_stdout_ends_show_and_review_quietly() {
    // Far more than a pipe buffer holds, so each must write after the reader is gone.
    let dir = tempfile::tempdir().unwrap();
    let mut lines = vec![HEADER, OPEN];
    lines.extend(std::iter::repeat_n(CHAT, 5000));
    lines.extend([CLOSE, END, FINISH]);
    let path = write(&dir, "big.jsonl", &lines, true);
    with_stdout_closed(
        &["show".as_ref(), path.as_ref(), "--timeline".as_ref()],
        b"",
    );

    let snaps = dir.path().join("snapshots");
    let fields: String = (0..5000).map(|i| format!("field_{i}  integer\n")).collect();
    let rec = std::path::Path::new("recordings/big.jsonl");
    let body = format!("## route f\n\n### s2c t ×1\n{fields}");
    wsreplay::structure::snapshot::write(
        &wsreplay::structure::snapshot::new_path_for(&snaps, "big"),
        rec,
        &body,
    )
    .unwrap();
    with_stdout_closed(
        &["review".as_ref(), "--snapshots".as_ref(), snaps.as_ref()],
        b"s\n",
    );
}

#[test]
fn replay_with_mocks_but_no_target_is_refused() {
    let (code, _, err) = run(&["replay", CHECKOUT, "--mock", "nlp=127.0.0.1:0"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err,
        "error: --mock needs a --target: the mocks answer the build while the recorded clients replay; add --target ROUTE=URL, or serve the recorded servers on their own for any client with `wsreplay mock RECORDING --route ROUTE=LISTEN`\n"
    );
}

#[test]
fn a_target_without_scheme_says_how_to_write_it() {
    let (code, _, err) = run(&["replay", CHECKOUT, "--target", "frontend=127.0.0.1:29110"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err,
        "error: --target frontend=127.0.0.1:29110: the URL must start with ws:// or wss://, e.g. frontend=ws://127.0.0.1:29110\n"
    );
    let (code, _, err) = run(&[
        "record",
        "--discard",
        "--route",
        "frontend=127.0.0.1:0=127.0.0.1:29110",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("upstream 127.0.0.1:29110: the URL must start with ws:// or wss://, e.g. frontend=127.0.0.1:0=ws://127.0.0.1:29110"),
        "{err}"
    );
}

#[test]
fn logs_written_to_a_file_have_no_colour_codes() {
    // A mock on a non-loopback address logs a warning (then the missing --target stops it).
    let (code, _, err) = run(&[
        "replay",
        CHECKOUT,
        "--mock",
        "nlp=0.0.0.0:0",
        "--allow-remote",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("reachable from other machines"), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

#[test]
fn an_ending_names_its_side_once() {
    let dir = tempfile::tempdir().unwrap();
    let unreachable = r#"{"kind":"end","t_us":50,"conn":1,"how":"unreachable","by":"upstream","error":"connection refused"}"#;
    let path = write(&dir, "u.jsonl", &[HEADER, OPEN, unreachable, FINISH], true);
    let (code, out, _) = show(&path, &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains("ended: ABNORMAL upstream unreachable: connection refused\n"),
        "{out}"
    );
    let (_, out, _) = show(&path, &["--timeline"]);
    assert!(
        out.contains("end    upstream unreachable: connection refused\n"),
        "{out}"
    );
}
