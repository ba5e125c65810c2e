//! `clave evidence verify` on the real vectors of `crates/attest/tests/data/real`: success JSON,
//! a bit flip (exit 3 as for `clave attest`: attestation failed, one line), a wrong expected
//! measurement (exit 3, naming it), a missing file (exit 2).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn real(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../attest/tests/data/real")
        .join(rel)
}

fn clave(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clave"))
        .arg("evidence")
        .arg("verify")
        .args(args)
        .output()
        .expect("run clave")
}

fn stderr_line(o: &Output) -> String {
    let s = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(s.trim_end().lines().count(), 1, "one line on stderr: {s:?}");
    s.trim_end().to_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn snp_success_prints_claims_json() {
    let report = real("snp/milan_azure_report.hex");
    let vcek = real("snp/milan_azure_vcek.pem");
    let o = clave(&[
        "--tee",
        "snp",
        "--evidence",
        p(&report),
        "--vcek",
        p(&vcek),
        "--at",
        "2026-01-01T00:00:00Z",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert_eq!(v["verified"], true);
    assert_eq!(v["kind"], "sev_snp");
    assert_eq!(v["debug"], false);
    assert_eq!(v["tcb"], serde_json::json!([4, 0, 24, 219]));
    assert_eq!(v["report_data_checked"], false);
    assert_eq!(v["measurement_enforced"], false);
    assert_eq!(v["verified_at"], "2026-01-01T00:00:00Z");
    let m = v["measurement"].as_str().expect("measurement").to_owned();
    assert_eq!(m.len(), 96);
    let rd = v["report_data"].as_str().expect("report data").to_owned();

    // Enforcing what was reported succeeds and says so.
    let o = clave(&[
        "--tee",
        "snp",
        "--evidence",
        p(&report),
        "--vcek",
        p(&vcek),
        "--at",
        "2026-01-01T00:00:00Z",
        "--expect-measurement",
        &m,
        "--expect-report-data",
        &rd,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["measurement_enforced"], true);
    assert_eq!(v["report_data_checked"], true);

    // Wrong expected measurement: exit 3, one line naming the check.
    let wrong = "00".repeat(48);
    let o = clave(&[
        "--tee",
        "snp",
        "--evidence",
        p(&report),
        "--vcek",
        p(&vcek),
        "--at",
        "2026-01-01T00:00:00Z",
        "--expect-measurement",
        &wrong,
    ]);
    assert_eq!(o.status.code(), Some(3), "exit 3: attestation failed");
    let line = stderr_line(&o);
    assert!(line.starts_with("refused: measurement"), "{line}");
    assert!(o.stdout.is_empty());

    // Wrong report data.
    let o = clave(&[
        "--tee",
        "snp",
        "--evidence",
        p(&report),
        "--vcek",
        p(&vcek),
        "--at",
        "2026-01-01T00:00:00Z",
        "--expect-report-data",
        &"11".repeat(64),
    ]);
    assert_eq!(o.status.code(), Some(3), "exit 3: attestation failed");
    assert!(stderr_line(&o).starts_with("refused: report data"));

    // Outside the VCEK's validity.
    let o = clave(&[
        "--tee",
        "snp",
        "--evidence",
        p(&report),
        "--vcek",
        p(&vcek),
        "--at",
        "2040-01-01T00:00:00Z",
    ]);
    assert_eq!(o.status.code(), Some(3), "exit 3: attestation failed");
    assert!(stderr_line(&o).starts_with("refused: validity"));
}

#[test]
fn snp_bit_flip_is_refused_in_one_line() {
    let hex_text = std::fs::read_to_string(real("snp/genoa_azure_report.hex")).expect("read");
    let mut report = hex::decode(hex_text.split_whitespace().collect::<String>()).expect("hex");
    report[21] ^= 0x80;
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("flipped.bin");
    std::fs::write(&raw, &report).expect("write");
    let vcek = real("snp/genoa_azure_vcek.pem");
    let o = clave(&[
        "--tee",
        "snp",
        "--evidence",
        p(&raw),
        "--vcek",
        p(&vcek),
        "--at",
        "2026-01-01T00:00:00Z",
    ]);
    assert_eq!(o.status.code(), Some(3), "exit 3: attestation failed");
    let line = stderr_line(&o);
    assert!(line.starts_with("refused: signature"), "{line}");
}

#[test]
fn tdx_with_collateral_file() {
    let quote = real("tdx/tdx_quote_v4.hex");
    let col = real("tdx/tdx_collateral.json");
    let o = clave(&[
        "--tee",
        "tdx",
        "--evidence",
        p(&quote),
        "--collateral",
        p(&col),
        "--at",
        "2025-09-15T00:00:00Z",
        "--expect-measurement",
        "f06dfda6dce1cf904d4e2bab1dc370634cf95cefa2ceb2de2eee127c9382698090d7a4a13e14c536ec6c9c3c8fa87077",
        "--expect-pcr",
        "rtmr0=68102e7b524af310f7b7d426ce75481e36c40f5d513a9009c046e9d37e31551f0134d954b496a3357fd61d03f07ffe96",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["kind"], "tdx");
    assert_eq!(v["tcb_status"], "UpToDate");
    assert_eq!(v["measurement_enforced"], true);
    assert_eq!(v["registers_enforced"], serde_json::json!(["rtmr0"]));
    // Without collateral: a missing endorsement.
    let o = clave(&[
        "--tee",
        "tdx",
        "--evidence",
        p(&quote),
        "--at",
        "2025-09-15T00:00:00Z",
    ]);
    assert_eq!(o.status.code(), Some(3), "exit 3: attestation failed");
    assert!(stderr_line(&o).starts_with("refused: endorsement"));
}

#[test]
fn nitro_debug_document_is_refused() {
    let doc = real("nitro/evervault_attestation_doc.b64");
    let o = clave(&[
        "--tee",
        "nitro",
        "--evidence",
        p(&doc),
        "--at",
        "2023-09-07T16:00:00Z",
    ]);
    assert_eq!(o.status.code(), Some(3), "exit 3: attestation failed");
    assert!(stderr_line(&o).starts_with("refused: debug"));
}

#[test]
fn usage_errors_exit_2() {
    let o = clave(&["--tee", "snp", "--evidence", "/nonexistent/report.bin"]);
    assert_eq!(o.status.code(), Some(2));
    let line = stderr_line(&o);
    assert!(line.contains("--evidence"), "{line}");
    let report = real("snp/milan_azure_report.hex");
    let o = clave(&[
        "--tee",
        "snp",
        "--evidence",
        p(&report),
        "--at",
        "yesterday",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("RFC 3339"));
    let o = clave(&[
        "--tee",
        "snp",
        "--evidence",
        p(&report),
        "--collateral",
        p(&report),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = clave(&["--tee", "sev", "--evidence", p(&report)]);
    assert_eq!(o.status.code(), Some(2));
}
