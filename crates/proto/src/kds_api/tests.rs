use super::*;

struct TestRng(u64);
impl rand_core::TryRng for TestRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        // splitmix64: deterministic, test only.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}
impl rand_core::TryCryptoRng for TestRng {}

#[test]
fn binding_known_answer() {
    // SHA-512(be64(24) ‖ "clave/v1/kds-attestation" ‖ be64(32) ‖ pk ‖ be64(1) ‖ nonce)
    let mut input = Vec::new();
    input.extend_from_slice(&24u64.to_be_bytes());
    input.extend_from_slice(b"clave/v1/kds-attestation");
    input.extend_from_slice(&32u64.to_be_bytes());
    input.extend_from_slice(&[1u8; 32]);
    input.extend_from_slice(&1u64.to_be_bytes());
    input.push(2);
    use sha2::Digest as _;
    let expected: [u8; 64] = sha2::Sha512::digest(&input).into();
    assert_eq!(kds_attestation_report_data(&[1; 32], &[2]).0, expected);
}

#[test]
fn admission_binding_differs_from_the_plain_one() {
    let pk = [7u8; 32];
    let n = [9u8; 32];
    assert_eq!(
        kds_attestation_report_data_with(&pk, &n, None),
        kds_attestation_report_data(&pk, &n)
    );
    let h = [1u8; 32];
    let with = kds_attestation_report_data_with(&pk, &n, Some(&h));
    assert_ne!(with, kds_attestation_report_data(&pk, &n));
    assert_ne!(
        with,
        kds_attestation_report_data_with(&pk, &n, Some(&[2u8; 32]))
    );
}

#[test]
fn external_master_binding_differs_and_binds_the_admission_hash() {
    let pk = [7u8; 32];
    let n = [9u8; 32];
    let h = [1u8; 32];
    for a in [None, Some(&h)] {
        assert_eq!(
            kds_attestation_report_data_bound(&pk, &n, a, MasterSecretOrigin::Tee),
            kds_attestation_report_data_with(&pk, &n, a)
        );
    }
    let ext = kds_attestation_report_data_bound(&pk, &n, None, MasterSecretOrigin::External);
    let ext_h = kds_attestation_report_data_bound(&pk, &n, Some(&h), MasterSecretOrigin::External);
    assert_ne!(ext, kds_attestation_report_data(&pk, &n));
    assert_ne!(ext_h, kds_attestation_report_data_with(&pk, &n, Some(&h)));
    assert_ne!(ext, ext_h);
    // Omitted on the wire when it is the default; refused when unknown.
    let plain = AttestationResponse {
        evidence: vec![1],
        identity_public_key: pk,
        nonce: vec![2],
        admission_policy: None,
        master_secret_origin: MasterSecretOrigin::Tee,
    };
    let json = serde_json::to_string(&plain).expect("json");
    assert!(!json.contains("master_secret_origin"), "{json}");
    let external = AttestationResponse {
        master_secret_origin: MasterSecretOrigin::External,
        ..plain
    };
    let json = serde_json::to_string(&external).expect("json");
    assert!(
        json.contains(r#""master_secret_origin":"external""#),
        "{json}"
    );
    let back: AttestationResponse = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, external);
    let bad = json.replace(r#""external""#, r#""operator""#);
    let err = serde_json::from_str::<AttestationResponse>(&bad).expect_err("unknown origin");
    assert!(err.to_string().contains("unknown variant"), "{err}");
}

#[test]
fn bindings_are_domain_separated() {
    let pk = [7u8; 32];
    let n = [9u8; 32];
    let a = kds_attestation_report_data(&pk, &n);
    let b = release_report_data(&pk, &n);
    let c = replica_join_report_data(&pk, &n);
    assert_ne!(a, b);
    assert_ne!(b, c);
    assert_ne!(a, c);
    assert_ne!(release_report_data(&pk, &[8u8; 32]), b);
}

/// The KDS's sealing is plain RFC 9180 base mode: what it seals, the `hpke` crate opens, and
/// what the `hpke` crate seals (as KDS builds before the move to aws-lc-rs did), it opens.
#[test]
fn hpke_interoperates_with_the_hpke_crate() {
    use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
    type Kem = hpke::kem::X25519HkdfSha256;
    type Kdf = hpke::kdf::HkdfSha256;
    type Aead = hpke::aead::AesGcm128;
    let mut rng = TestRng(7);
    let sk = [9u8; 32];
    let pk = x25519_public_key(&sk).expect("pk");
    let their_sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&sk).expect("sk");
    assert_eq!(
        Kem::sk_to_pk(&their_sk).to_bytes().as_slice(),
        pk.as_slice()
    );

    let (enc, ct) = seal_to_ephemeral(&pk, RELEASE_HPKE_INFO, b"spec", b"released key", &mut rng)
        .expect("seal");
    let their_enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&enc).expect("enc");
    let pt = hpke::single_shot_open::<Aead, Kdf, Kem>(
        &OpModeR::Base,
        &their_sk,
        &their_enc,
        RELEASE_HPKE_INFO,
        &ct,
        b"spec",
    )
    .expect("the hpke crate opens it");
    assert_eq!(pt, b"released key");

    let their_pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&pk).expect("pk");
    let (enc, ct) = hpke::single_shot_seal_with_rng::<Aead, Kdf, Kem>(
        &OpModeS::Base,
        &their_pk,
        REPLICA_HPKE_INFO,
        b"master secret",
        b"identity",
        &mut rng,
    )
    .expect("the hpke crate seals");
    let pt = open_from_kds(&sk, REPLICA_HPKE_INFO, b"identity", &enc.to_bytes(), &ct)
        .expect("it opens what the hpke crate sealed");
    assert_eq!(pt.as_slice(), b"master secret");
}

/// A recipient key of low order gives no shared secret: refused, nothing sealed.
#[test]
fn hpke_refuses_a_low_order_recipient() {
    let mut rng = TestRng(3);
    assert!(matches!(
        seal_to_ephemeral(&[0u8; 32], RELEASE_HPKE_INFO, b"spec", b"x", &mut rng),
        Err(WireError::BadPublicKey)
    ));
    let mut one = [0u8; 32];
    one[0] = 1;
    assert!(matches!(
        seal_to_ephemeral(&one, RELEASE_HPKE_INFO, b"spec", b"x", &mut rng),
        Err(WireError::BadPublicKey)
    ));
    let sk = [42u8; 32];
    assert!(matches!(
        open_from_kds(&sk, RELEASE_HPKE_INFO, b"spec", &[0u8; 32], &[0u8; 32]),
        Err(WireError::Open)
    ));
    assert!(matches!(
        open_from_kds(&sk, RELEASE_HPKE_INFO, b"spec", &[1u8; 31], &[0u8; 32]),
        Err(WireError::Open)
    ));
}

#[test]
fn hpke_round_trip_and_aad_binding() {
    let mut rng = TestRng(1);
    let sk = [42u8; 32];
    let pk = x25519_public_key(&sk).expect("valid key");
    let (enc, ct) =
        seal_to_ephemeral(&pk, RELEASE_HPKE_INFO, b"spec", b"secret", &mut rng).expect("seal");
    assert_eq!(enc.len(), HPKE_ENC_LEN);
    let pt = open_from_kds(&sk, RELEASE_HPKE_INFO, b"spec", &enc, &ct).expect("open");
    assert_eq!(pt.as_slice(), b"secret");
    assert!(matches!(
        open_from_kds(&sk, RELEASE_HPKE_INFO, b"other", &enc, &ct),
        Err(WireError::Open)
    ));
    assert!(matches!(
        open_from_kds(&sk, REPLICA_HPKE_INFO, b"spec", &enc, &ct),
        Err(WireError::Open)
    ));
    let mut bad = ct.clone();
    bad[0] ^= 1;
    assert!(matches!(
        open_from_kds(&sk, RELEASE_HPKE_INFO, b"spec", &enc, &bad),
        Err(WireError::Open)
    ));
}

#[test]
fn caller_nonce_parsing() {
    assert_eq!(parse_caller_nonce("00ff").expect("hex"), vec![0, 255]);
    assert_eq!(parse_caller_nonce("AQID").expect("b64"), vec![1, 2, 3]);
    let refused = |s: &str, why: &str| {
        assert!(
            matches!(
                parse_caller_nonce(s),
                Err(WireError::Malformed { field: "nonce", reason }) if reason == why
            ),
            "{s:?}: {:?}",
            parse_caller_nonce(s)
        );
    };
    let length = "length must be 1..=64 bytes";
    let encoding = "neither lowercase hex nor unpadded base64url";
    refused("", length);
    refused("!!", encoding);
    refused(&"ab".repeat(65), length);
    refused("AQID==", encoding);
}

#[test]
fn release_request_json_round_trip_and_rejects_bad_lengths() {
    let req = ReleaseRequest {
        spec: vec![1, 2, 3],
        evidence: vec![4, 5],
        ephemeral_public_key: [6; 32],
        nonce: [7; 32],
    };
    let json = serde_json::to_string(&req).expect("serialize");
    let back: ReleaseRequest = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, req);
    let short = json.replace(&b64::encode(&[7; 32]), &b64::encode(&[7; 31]));
    let err = serde_json::from_str::<ReleaseRequest>(&short).expect_err("31-byte nonce");
    assert!(err.to_string().contains("expected 32 bytes"), "{err}");
    let extra = json.replacen('{', "{\"x\":1,", 1);
    let err = serde_json::from_str::<ReleaseRequest>(&extra).expect_err("unknown field");
    assert!(err.to_string().contains("unknown field `x`"), "{err}");
}
