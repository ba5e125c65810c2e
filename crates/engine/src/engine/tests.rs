use super::*;

#[test]
fn limits_are_clamped_to_maxima() {
    let max = Limits {
        cpu_ms: 100,
        ..Limits::default()
    };
    let want = Limits {
        cpu_ms: 5_000,
        heap_bytes: 1,
        ..Limits::default()
    };
    let got = clamp_limits(&want, &max);
    assert_eq!(got.cpu_ms, 100);
    assert_eq!(got.heap_bytes, 1);
}

#[test]
fn run_errors_map_to_problem_kinds() {
    assert_eq!(run_problem(RunError::Timeout).kind, ProblemKind::Timeout);
    assert_eq!(
        run_problem(RunError::OutOfMemory).kind,
        ProblemKind::OutOfMemory
    );
    assert_eq!(
        run_problem(RunError::StackOverflow).kind,
        ProblemKind::LimitExceeded
    );
    assert_eq!(
        run_problem(RunError::ResponseTooLarge).kind,
        ProblemKind::LimitExceeded
    );
    let p = run_problem(RunError::Script {
        message: "boom".into(),
    });
    assert_eq!(p.kind, ProblemKind::ScriptError);
    assert_eq!(p.detail.as_deref(), Some("boom"));
    assert_eq!(run_problem(RunError::Internal).kind, ProblemKind::Internal);
}

#[test]
fn engine_binding_is_domain_separated() {
    let n = [1u8; 32];
    assert_ne!(
        engine_attestation_report_data(&n),
        clave_proto::kds_api::kds_attestation_report_data(&[0; 32], &n)
    );
}
