//! The published API description (server/openapi.yaml, served at /v1/openapi.yaml)
//! against the real service: a schema-driven fuzz (schemathesis, installed by test.sh
//! into target/schemathesis) sends generated valid and invalid requests to every
//! operation, as an admin, and must find no 5xx, and no answer whose status, content
//! type or body breaks the description (every failure is the JSON error format).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::hosts::POLICY;
use common::world::Service;
use common::TempDir;

fn schemathesis() -> PathBuf {
    if let Some(p) = std::env::var_os("JITSUDO_SCHEMATHESIS") {
        return p.into();
    }
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/schemathesis/bin/schemathesis");
    assert!(
        p.exists(),
        "{} is missing: ./test.sh installs it (python3 -m venv target/schemathesis && \
         target/schemathesis/bin/pip install schemathesis)",
        p.display()
    );
    p
}

#[test]
fn the_published_description_is_what_the_service_serves() {
    common::require_root();
    let db = TempDir::new("openapi-db");
    let svc = Service::start(
        &format!("sqlite://{}/x.db", db.path().display()),
        POLICY,
        None,
    );
    let mut resp = ureq::get(format!("{}/v1/openapi.yaml", svc.url))
        .call()
        .unwrap();
    let served = resp.body_mut().read_to_string().unwrap();
    let file =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    assert_eq!(served, file);
}

#[test]
fn schema_driven_fuzz_finds_no_server_error_and_no_schema_break() {
    common::require_root();
    let tool = schemathesis();
    let db = TempDir::new("openapi-fuzz-db");
    let svc = Service::start(
        &format!("sqlite://{}/x.db", db.path().display()),
        POLICY,
        None,
    );
    let report = TempDir::new("openapi-report");
    let out = Command::new(&tool)
        .arg("run")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .args(["--url", &svc.url])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--header", &format!("Authorization: Bearer {}", svc.admin_token)])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "25", "--seed", "16", "--workers", "2", "--no-color"])
        .args(["--request-timeout", "30"])
        .arg("--report-dir")
        .arg(report.path())
        .env("SCHEMATHESIS_HOOKS", "")
        .env("HOME", report.path())
        // Its example cache (.schemathesis/) goes to the working directory: not the tree.
        .current_dir(report.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{stderr}"
    );
    // It really ran operations.
    assert!(stdout.contains("passed"), "{stdout}");
    assert!(
        !svc.log().contains("request failed"),
        "a 5xx was logged:\n{}",
        svc.log()
    );
}
