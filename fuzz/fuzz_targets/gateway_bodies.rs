#![no_main]
//! The request bodies the gateway parses: the deploy body (`DeployRequest` JSON, its base64url
//! manifest and sealed code, the manifest JSON and the sealed-code encoding inside), the engine
//! registration body, the engine job framing the engines parse from the gateway
//! (`EngineJob::decode`), the sealed secret set inside it (`SecretSet::decode`) and the secret
//! put body. None may panic; what parses re-encodes to the same value.

use clave_proto::code::{Manifest, SealedCode};
use clave_proto::gateway_api::{ActivateRequest, DeployRequest, EngineJob, EngineRegisterRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<DeployRequest>(data)
        && let Ok((manifest, sealed)) = req.decode()
    {
        if let Ok(m) = Manifest::from_bytes(&manifest) {
            assert_eq!(Manifest::from_bytes(&m.to_bytes()).expect("re-parse"), m);
        }
        if let Ok(s) = SealedCode::from_bytes(&sealed) {
            assert_eq!(s.to_bytes(), sealed);
        }
    }
    let _ = serde_json::from_slice::<EngineRegisterRequest>(data);
    let _ = serde_json::from_slice::<ActivateRequest>(data);
    if let Ok(set) = clave_proto::secret::SecretSet::decode(data) {
        let again = set.encode().expect("re-encode");
        assert_eq!(clave_proto::secret::SecretSet::decode(&again).expect("re-decode"), set);
    }
    if let Ok(req) = serde_json::from_slice::<clave_proto::devloop_api::PutSecretRequest>(data) {
        let again = serde_json::to_vec(&req).expect("re-encode");
        assert_eq!(
            serde_json::from_slice::<clave_proto::devloop_api::PutSecretRequest>(&again).expect("re-decode"),
            req
        );
    }
    if let Ok(job) = EngineJob::decode(data) {
        let again = EngineJob::decode(&job.encode().expect("re-encode")).expect("re-decode");
        assert_eq!(again, job);
    }
});
