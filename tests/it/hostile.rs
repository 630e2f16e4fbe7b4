//! Hostile recording files: truncated, a 1 GiB line, invalid UTF-8, nesting 10,000
//! levels deep. Each gets a clear error naming the file and line (or is read as far as
//! it is sound), in bounded memory, without a stack overflow.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use wsreplay::recording::Recording;

use crate::support::*;

const HEADER: &str =
    r#"{"format":"wsreplay-recording","version":"1.0","tool":"test","started_unix_ms":0}"#;
const OPEN: &str = r#"{"kind":"open","t_us":0,"route":"r","conn":1,"client":"c","upstream":"ws://u","request":"GET / HTTP/1.1","headers":[],"status":101}"#;

fn message(text: &str) -> String {
    let text = serde_json::to_string(text).unwrap();
    format!(
        r#"{{"kind":"message","t_us":1,"conn":1,"dir":"s2c","op":"text","text":{text},"frames":1}}"#
    )
}

/// Runs `wsreplay ARGS FILE`; returns (exit code, stdout, stderr).
fn wsreplay(args: &[&str], file: &Path) -> (i32, String, String) {
    let file = file.to_str().unwrap();
    run(&[args, &[file]].concat())
}

fn file_with(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_truncated_recording_keeps_what_is_whole_and_a_broken_middle_line_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let whole = format!("{HEADER}\n{OPEN}\n{}\n", message(r#"{"type":"a"}"#));
    let torn = format!("{whole}{}", &message(r#"{"type":"b"}"#)[..40]);
    let path = file_with(&dir, "torn.jsonl", torn.as_bytes());
    let rec = Recording::read(&path).unwrap();
    assert_eq!(rec.records.len(), 2);
    assert!(rec.warnings[0]
        .to_string()
        .starts_with("line 4: torn last line ignored"));

    let broken = format!(
        "{HEADER}\n{OPEN}\n{}\n{}\n",
        &message("x")[..40],
        message("y")
    );
    let path = file_with(&dir, "broken.jsonl", broken.as_bytes());
    let (code, _, stderr) = wsreplay(&["show"], &path);
    assert_eq!(code, 2);
    assert!(stderr.contains("broken.jsonl:3: "), "{stderr}");
}

#[test]
fn a_1_gib_line_is_refused_with_the_line_number_in_bounded_memory() {
    // A real (sparse) 1 GiB file; the reader stops at its 256 MiB line limit, so
    // memory stays bounded by that limit.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "{HEADER}").unwrap();
    f.set_len(1 << 30).unwrap();
    drop(f);
    let (code, _, stderr) = wsreplay(&["show"], &path);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("huge.jsonl:2: line is longer than"),
        "{stderr}"
    );
}

#[test]
fn invalid_utf8_names_the_file_line_and_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = format!("{HEADER}\n{OPEN}\n").into_bytes();
    bytes.extend_from_slice(b"{\"kind\":\"message\",\xff\xfe}\n");
    let path = file_with(&dir, "latin1.jsonl", &bytes);
    let (code, _, stderr) = wsreplay(&["show"], &path);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("latin1.jsonl:3: invalid UTF-8 at byte 18"),
        "{stderr}"
    );
}

#[test]
fn nesting_10000_levels_deep_is_an_error_in_a_record_and_plain_text_in_a_message() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let dir = tempfile::tempdir().unwrap();
    // In the record itself: refused, naming the line.
    let record =
        format!(r#"{{"kind":"end","t_us":1,"conn":1,"how":"eof","by":"client","x":{deep}}}"#);
    let path = file_with(
        &dir,
        "deep-record.jsonl",
        format!("{HEADER}\n{OPEN}\n{record}\n").as_bytes(),
    );
    let (code, _, stderr) = wsreplay(&["show"], &path);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("deep-record.jsonl:3: recursion limit exceeded"),
        "{stderr}"
    );
    // In a message's text: the recording is sound; every consumer treats the text as
    // text that is not JSON (show, secrets, snapshot), without overflowing the stack.
    let nested_object = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let body = format!(
        "{HEADER}\n{OPEN}\n{}\n{}\n",
        message(&deep),
        message(&nested_object)
    );
    let path = file_with(&dir, "deep-message.jsonl", body.as_bytes());
    let (code, stdout, stderr) = wsreplay(&["show"], &path);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("s2c    2 message(s): (text) ×2"),
        "{stdout}"
    );
    assert_eq!(wsreplay(&["show", "--secrets"], &path).0, 0);
    let snapshots = dir.path().join("snapshots");
    let out = Command::new(bin())
        .args(["snapshot", "--snapshots"])
        .arg(&snapshots)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snap = std::fs::read_to_string(snapshots.join("deep-message.snap")).unwrap();
    assert!(snap.contains("s2c (text)"), "{snap}");
}

/// Recorded text that would drive a terminal (colour, window title, bell, carriage
/// return) or reorder what a reviewer reads (U+202E) is shown escaped by `show`,
/// `show --timeline`, `diff` and `check`'s report, never raw.
#[test]
fn recorded_escape_sequences_never_reach_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let evil = r#"{"type":"x\u001b]0;pwned\u0007","n\u202eote":"\u001b[2J\r"}"#;
    let close =
        r#"{"kind":"close","t_us":2,"conn":1,"dir":"s2c","code":1000,"reason":"\u001b[31mred"}"#;
    let text = [HEADER, OPEN, &message(evil), close].join("\n") + "\n";
    let a = file_with(&dir, "a.jsonl", text.as_bytes());
    let plain = [HEADER, OPEN, &message(r#"{"type":"y"}"#)].join("\n") + "\n";
    let b = file_with(&dir, "b.jsonl", plain.as_bytes());
    let raw = |s: &str| {
        s.contains('\u{1b}') || s.contains('\u{7}') || s.contains('\u{202e}') || s.contains('\r')
    };
    for args in [
        &["show"][..],
        &["show", "--timeline"],
        &["show", "--mermaid"],
    ] {
        let (code, out, err) = wsreplay(args, &a);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(
            !raw(&out),
            "{args:?} printed raw control characters: {out:?}"
        );
        // (Mermaid labels have their own escaping: control characters become spaces.)
        assert!(
            args.contains(&"--mermaid") || out.contains("x\\x1b]0;pwned\\x07"),
            "{args:?}: {out}"
        );
    }
    let (_, out, _) = run(&["diff", b.to_str().unwrap(), a.to_str().unwrap()]);
    assert!(!raw(&out), "diff printed raw control characters: {out:?}");
    assert!(out.contains("\\u{202e}"), "{out}");
}

/// A torn recording (killed recorder: no `finish`, half a last line) is used as far as
/// it is sound by every command, and each says so, as `show` does.
#[test]
fn commands_warn_about_a_torn_recording() {
    let dir = tempfile::tempdir().unwrap();
    let text = [
        HEADER,
        OPEN,
        &message(r#"{"type":"t"}"#),
        r#"{"kind":"mess"#,
    ]
    .join("\n");
    let torn = file_with(&dir, "torn.jsonl", text.as_bytes());
    let torn_s = torn.to_str().unwrap();
    let snapshots = dir.path().join("snaps");
    let warned = |out: &str, err: &str| {
        let all = format!("{out}{err}");
        all.contains(&format!("{torn_s}:4: ")) && all.contains("warning")
    };
    let (code, out, err) = run(&[
        "snapshot",
        torn_s,
        "--snapshots",
        snapshots.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(warned(&out, &err), "snapshot: {out}{err}");
    let (code, out, err) = run(&["schema", torn_s, "--format", "json-schema"]);
    assert_eq!(code, 0, "{err}");
    assert!(warned(&out, &err), "schema: {err}");
    let (code, out, err) = run(&["diff", torn_s, torn_s]);
    assert_eq!(code, 0, "{err}");
    assert!(warned(&out, &err), "diff: {out}{err}");
}
