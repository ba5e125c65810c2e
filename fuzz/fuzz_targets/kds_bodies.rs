#![no_main]
//! The request bodies the KDS parses, and the steps it takes on them before any secret is used:
//! the key-release body (`ReleaseRequest` JSON → canonical `KeySpec` bytes and `Evidence` bytes,
//! then verification of that evidence against the spec's own policy and the bound report data),
//! the replica-join body (`ReplicaJoinRequest` → evidence → verification), and the caller nonce of
//! `GET /v1/kds/attestation?nonce=`. None may panic.

use clave_attest::{Evidence, verify};
use clave_proto::KeySpec;
use clave_proto::kds_api::{
    ReleaseRequest, ReplicaJoinRequest, parse_caller_nonce, release_report_data,
    replica_join_report_data,
};
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_750_000_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<ReleaseRequest>(data) {
        let spec = KeySpec::from_bytes(&req.spec);
        if let Ok(spec) = &spec {
            assert_eq!(spec.to_bytes(), req.spec);
        }
        if let Ok(evidence) = Evidence::from_bytes(&req.evidence) {
            let expected = release_report_data(&req.ephemeral_public_key, &req.nonce);
            if let Ok(spec) = &spec {
                let _ = verify(&evidence, &spec.policy, &expected, NOW);
            }
        }
    }
    if let Ok(req) = serde_json::from_slice::<ReplicaJoinRequest>(data)
        && let Ok(evidence) = Evidence::from_bytes(&req.evidence)
    {
        let expected = replica_join_report_data(&req.ephemeral_public_key, &req.nonce);
        if let Ok(policy) =
            clave_attest::Policy::insecure_dev([clave_attest::Measurement(vec![0; 48])])
        {
            let _ = verify(&evidence, &policy, &expected, NOW);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_caller_nonce(text);
    }
});
