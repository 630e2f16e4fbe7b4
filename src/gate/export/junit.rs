//! JUnit XML (`check --junit FILE`): one test case per recording and route, the
//! semantic summary as the failure message and the diff as its text; timing breaches
//! as test cases of their own with the failure type `timing`. A flaky difference
//! (`--confirm`) is a passing case holding the run that differed as a `flakyFailure`,
//! as nextest reports a test that passed on a retry.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestRerun, TestSuite};

use super::Exporter;
use crate::gate::CheckResult;

/// JUnit XML.
pub struct Junit;

impl Exporter for Junit {
    fn export(&self, results: &[CheckResult], out: &mut dyn std::io::Write) -> std::io::Result<()> {
        out.write_all(junit(results).as_bytes())
    }
}

/// JUnit XML: one test case per recording and route; the failure text is the summary.
fn junit(results: &[CheckResult]) -> String {
    let mut suite = TestSuite::new("wsreplay");
    for r in results {
        let classname = r.recording.display().to_string();
        let mut cases: Vec<TestCase> = Vec::new();
        if let Some(e) = &r.error {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(e.clone());
            cases.push(TestCase::new(
                format!("{}: could not check", r.name),
                status,
            ));
        } else if r.snapshot_missing {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(format!(
                "no snapshot for {}: run `wsreplay snapshot {classname}`",
                r.name
            ));
            cases.push(TestCase::new(format!("{}: snapshot", r.name), status));
        }
        for route in &r.routes {
            let status = if route.same() {
                TestCaseStatus::success()
            } else if let Some(flaky) = &r.flaky {
                // As nextest marks a test that passed on a retry: a passing case with
                // the run that failed as a `flakyFailure`.
                let mut rerun = TestRerun::new(NonSuccessKind::Failure);
                rerun.set_message(format!("flaky: {flaky}: {}", route.summary.join("; ")));
                rerun.set_description(route.diff.clone());
                let mut s = TestCaseStatus::success();
                s.add_rerun(rerun);
                s
            } else {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(route.summary.join("; "));
                s.set_description(route.diff.clone());
                s
            };
            cases.push(TestCase::new(
                format!("{}: {}", r.name, route.route),
                status,
            ));
        }
        let mut routes: Vec<&str> = r.timing.iter().map(|b| b.route.as_str()).collect();
        routes.dedup();
        for route in routes {
            // Its own test case and failure type: never mixed with the structure's.
            let breaches: Vec<String> = r
                .timing
                .iter()
                .filter(|b| b.route == route)
                .map(ToString::to_string)
                .collect();
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_type("timing");
            status.set_message(format!(
                "{} timing figure(s) outside the envelope",
                breaches.len()
            ));
            status.set_description(breaches.join("\n"));
            cases.push(TestCase::new(format!("{}: timing {route}", r.name), status));
        }
        for mut case in cases {
            case.set_classname(classname.clone());
            suite.add_test_case(case);
        }
    }
    let mut report = Report::new("wsreplay");
    report.add_test_suite(suite);
    report.to_string().unwrap_or_default()
}
