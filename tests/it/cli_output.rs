//! The command line's own output is a contract: help text a newcomer reads, the errors
//! that say what to do next, and the summaries printed for a recording. Each is an insta
//! snapshot; an intended change is accepted with `cargo insta review`.

use crate::support::{bin, CHECKOUT};

/// The output of `wsreplay ARGS`: exit code, then stdout and stderr as they were printed
/// (off a terminal, 100 columns wide, colour left to the defaults). With `dir`, the
/// local CA lives in `dir/config`.
fn output(args: &[&str], dir: Option<&std::path::Path>) -> String {
    let mut command = std::process::Command::new(bin());
    command
        .args(args)
        .env("COLUMNS", "100")
        .env_remove("CLICOLOR_FORCE");
    if let Some(dir) = dir {
        command.env("WSREPLAY_CONFIG_DIR", dir.join("config"));
    }
    let out = command.output().unwrap();
    format!(
        "exit code: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Snapshots `wsreplay ARGS`, with `dir` (a temporary directory) shown as `[DIR]`.
fn assert_output(name: &str, args: &[&str], dir: Option<&std::path::Path>) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_suffix(name);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_description(format!("wsreplay {}", args.join(" ")));
    settings.set_omit_expression(true);
    if let Some(dir) = dir {
        settings.add_filter(&regex::escape(&dir.display().to_string()), "[DIR]");
    }
    settings.add_filter(&regex::escape(env!("CARGO_MANIFEST_DIR")), "[REPO]");
    settings.add_filter(r"wsreplay \d+\.\d+\.\d+", "wsreplay [VERSION]");
    // The local CA's SPKI hash (base64 SHA-256) differs for every new CA.
    settings.add_filter(r"[A-Za-z0-9+/]{43}=", "[SPKI-SHA256]");
    settings.bind(|| insta::assert_snapshot!("cli", output(args, dir)));
}

#[test]
fn help_reads_as_a_manual() {
    assert_output("help", &["--help"], None);
    for command in [
        "record",
        "replay",
        "mock",
        "snapshot",
        "check",
        "diff",
        "review",
        "show",
        "split",
        "merge",
        "bench",
        "soak",
        "serve-demo",
        "schema",
        "validate",
        "ca",
        "demo",
    ] {
        assert_output(&format!("help-{command}"), &[command, "--help"], None);
    }
    assert_output("help-import-har", &["import", "har", "--help"], None);
}

#[test]
fn the_local_ca_says_how_to_trust_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = Some(dir.path());
    assert_output("ca-install-hint", &["ca", "--install-hint"], d);
    assert_output("ca-path", &["ca", "--path"], d);
    let key = dir.path().join("config").join("ca-key.pem");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn errors_name_the_problem_and_the_next_step() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.jsonl");
    std::fs::write(
        &broken,
        "{\"format\":\"wsreplay-recording\",\"version\":\"1.0\",\"tool\":\"t\",\"started_unix_ms\":0}\n{\"kind\":\"message\",\"dir\":\"up\"}\n",
    )
    .unwrap();
    let broken = broken.to_str().unwrap();
    let missing = dir.path().join("missing.jsonl");
    let missing = missing.to_str().unwrap();
    let d = Some(dir.path());
    assert_output("error-missing-file", &["show", missing], d);
    assert_output("error-malformed-line", &["show", broken], d);
    assert_output("error-nothing-to-replay", &["replay", CHECKOUT], None);
    assert_output(
        "error-mock-without-target",
        &["replay", CHECKOUT, "--mock", "nlp=127.0.0.1:0"],
        None,
    );
    assert_output(
        "error-schema-not-json",
        &["validate", CHECKOUT, "--schema", CHECKOUT],
        None,
    );
    assert_output(
        "error-split-unknown-frontend",
        &["split", CHECKOUT, "--by", "session", "--frontend", "web"],
        None,
    );
    assert_output(
        "error-merge-one-file",
        &["merge", CHECKOUT, "--out", missing],
        d,
    );
    assert_output("error-no-command", &[], None);
}

#[test]
fn summaries_of_the_demo_recording() {
    let dir = tempfile::tempdir().unwrap();
    let d = Some(dir.path());
    let snapshots = dir.path().join("snapshots");
    let snapshots = snapshots.to_str().unwrap();
    assert_output("diff-same", &["diff", CHECKOUT, CHECKOUT], None);
    assert_output(
        "snapshot-written",
        &["snapshot", CHECKOUT, "--snapshots", snapshots],
        d,
    );
    assert_output("show-secrets", &["show", CHECKOUT, "--secrets"], None);
    let split = dir.path().join("split");
    let split = split.to_str().unwrap();
    let args = ["split", CHECKOUT, "--by", "session", "--out-dir", split];
    assert_output("split-by-session", &args, d);
}
