//! Wire types of the KDS HTTP API (`/v1/kds/...`), owned by `clave-kds`.
//!
//! The KDS serves these types; the engine (key release client), the gateway (which proxies
//! bundles and attestation) and clients use them. Everything binary travels as unpadded
//! base64url in JSON; digests and spec ids as lowercase hex. The Rust fields hold the decoded
//! bytes, so a request that parses has fields of the right length.
//!
//! This module also defines the two things both ends of a protocol must compute identically:
//!
//! - the **report-data bindings** ([`kds_attestation_report_data`], [`release_report_data`],
//!   [`replica_join_report_data`]): the 64 bytes a TEE puts into its evidence. Each is
//!   `clave_attest::ReportData::hash_of(label, [a, b])`, i.e.
//!   `SHA-512(len(label) ‖ label ‖ len(a) ‖ a ‖ len(b) ‖ b)` with big-endian u64 lengths;
//! - the **HPKE envelope** of a released key or replicated master secret
//!   ([`seal_to_ephemeral`] / [`open_from_kds`]): RFC 9180 base mode, single shot,
//!   DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-128-GCM, with a fixed `info` per purpose
//!   ([`RELEASE_HPKE_INFO`], [`REPLICA_HPKE_INFO`]) and the spec id (or the KDS identity key)
//!   as AAD.
//!
//! Nothing here ever carries key material in the clear: a released key is only ever present as
//! HPKE ciphertext, and the release log has no field that could hold a key.

use crate::hpke_x25519::{self, X25519PrivateKey};
use clave_attest::ReportData;
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Domain label of the KDS attestation binding (identity public key + caller nonce).
pub const KDS_ATTESTATION_LABEL: &[u8] = b"clave/v1/kds-attestation";
/// Domain label of the KDS attestation binding of a KDS that runs with an admission policy
/// (identity public key + caller nonce + [`admission_policy_hash`]).
pub const KDS_ATTESTATION_ADMISSION_LABEL: &[u8] = b"clave/v1/kds-attestation+admission";
/// Domain label of the KDS attestation binding of a KDS whose master secret came from an
/// external key source ([`MasterSecretOrigin::External`]): identity public key + caller nonce +
/// [`admission_policy_hash`] or nothing.
pub const KDS_ATTESTATION_EXTERNAL_MASTER_LABEL: &[u8] =
    b"clave/v1/kds-attestation+external-master";
/// Domain prefix of [`admission_policy_hash`].
pub const ADMISSION_POLICY_HASH_LABEL: &[u8] = b"clave/v1/kds-admission-policy\0";
/// Domain label of the key release binding (engine ephemeral public key + KDS nonce).
pub const KEY_RELEASE_LABEL: &[u8] = b"clave/v1/key-release";
/// Domain label of the replica join binding (joiner ephemeral public key + KDS nonce).
pub const REPLICA_JOIN_LABEL: &[u8] = b"clave/v1/kds-replica-join";

/// HPKE `info` of a released derived private key.
pub const RELEASE_HPKE_INFO: &[u8] = b"clave/v1/key-release/hpke";
/// HPKE `info` of a master secret sent to a joining replica.
pub const REPLICA_HPKE_INFO: &[u8] = b"clave/v1/kds-replica/hpke";

/// Length of a KDS-issued nonce (release and replica join).
pub const NONCE_LEN: usize = 32;
/// Largest caller nonce accepted by `GET /v1/kds/attestation` (bytes, after decoding).
pub const MAX_CALLER_NONCE_LEN: usize = 64;
/// Length of an X25519 public key (the ephemeral key of a release or join).
pub const X25519_PK_LEN: usize = 32;
/// Length of the HPKE encapsulated key for DHKEM(X25519).
pub const HPKE_ENC_LEN: usize = 32;

/// `Content-Type` of KDS error bodies (RFC 9457).
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// HTTP paths of the KDS service.
pub mod paths {
    /// `GET ?nonce=<hex | base64url>` → [`super::AttestationResponse`].
    pub const ATTESTATION: &str = "/v1/kds/attestation";
    /// `GET` → [`super::KeysResponse`].
    pub const KEYS: &str = "/v1/kds/keys";
    /// `POST` (empty body) → [`super::NonceResponse`].
    pub const NONCE: &str = "/v1/kds/nonce";
    /// `POST` [`super::ReleaseRequest`] → [`super::ReleaseResponse`].
    pub const RELEASE: &str = "/v1/kds/release";
    /// `GET` → [`super::ReleaseLogResponse`].
    pub const LOG: &str = "/v1/kds/log";
    /// `POST` (empty body) → [`super::NonceResponse`] for a replica join.
    pub const REPLICA_NONCE: &str = "/v1/kds/replica/nonce";
    /// `POST` [`super::ReplicaJoinRequest`] → [`super::ReplicaJoinResponse`].
    pub const REPLICA_JOIN: &str = "/v1/kds/replica/join";
}

/// Errors of this module: malformed wire values and failed HPKE operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// A nonce or key had the wrong encoding or length.
    #[error("malformed {field}: {reason}")]
    Malformed {
        /// Which value.
        field: &'static str,
        /// What was wrong (never the value itself).
        reason: &'static str,
    },
    /// The recipient public key is not a valid X25519 key.
    #[error("invalid recipient public key")]
    BadPublicKey,
    /// HPKE encapsulation or encryption failed.
    #[error("hpke seal failed")]
    Seal,
    /// The HPKE ciphertext did not open (wrong key, AAD, info, or tampered bytes).
    #[error("hpke open failed")]
    Open,
}

/// Report data of a KDS attestation: binds the KDS identity public key (Ed25519) and the
/// verifier's nonce. This is the binding of a KDS that admits only replicas of its own
/// measurement (no admission policy); see [`kds_attestation_report_data_with`].
pub fn kds_attestation_report_data(identity_pk: &[u8; 32], nonce: &[u8]) -> ReportData {
    ReportData::hash_of(KDS_ATTESTATION_LABEL, &[identity_pk, nonce])
}

/// Report data of a KDS attestation, binding the admission policy in force, if any.
///
/// `None` (the KDS admits only replicas running its own measurement) gives exactly
/// [`kds_attestation_report_data`]; `Some(h)` gives
/// `ReportData::hash_of(KDS_ATTESTATION_ADMISSION_LABEL, [identity_pk, nonce, h])` with `h` =
/// [`admission_policy_hash`] of the extra policy the KDS also admits replicas under. The labels
/// differ, so evidence of a KDS with an admission policy never verifies as evidence of one
/// without (a verifier that ignores the policy refuses the KDS rather than miss it).
pub fn kds_attestation_report_data_with(
    identity_pk: &[u8; 32],
    nonce: &[u8],
    admission_policy_hash: Option<&[u8; 32]>,
) -> ReportData {
    match admission_policy_hash {
        None => kds_attestation_report_data(identity_pk, nonce),
        Some(h) => ReportData::hash_of(KDS_ATTESTATION_ADMISSION_LABEL, &[identity_pk, nonce, h]),
    }
}

/// Where a KDS's master secret came from. Its evidence binds it
/// ([`kds_attestation_report_data_bound`]), so a verifier learns it and the host cannot hide it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MasterSecretOrigin {
    /// Created inside a KDS TEE (genesis) and only ever handed to replicas the admission rule
    /// accepts: nobody outside those TEEs knows it. Omitted on the wire.
    #[default]
    Tee,
    /// Provided from outside the TEE by an external key source (a file or file descriptor the
    /// host supplies) when this replica, or the replica it joined, started: whoever provided it
    /// knows it and can derive every key.
    External,
}

impl MasterSecretOrigin {
    /// Whether this is the default ([`MasterSecretOrigin::Tee`]).
    #[must_use]
    pub fn is_tee(&self) -> bool {
        *self == MasterSecretOrigin::Tee
    }

    /// snake_case name, as on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MasterSecretOrigin::Tee => "tee",
            MasterSecretOrigin::External => "external",
        }
    }
}

/// Report data of a KDS attestation, binding its admission policy hash (if any) and where its
/// master secret came from.
///
/// [`MasterSecretOrigin::Tee`] gives exactly [`kds_attestation_report_data_with`];
/// [`MasterSecretOrigin::External`] gives
/// `ReportData::hash_of(KDS_ATTESTATION_EXTERNAL_MASTER_LABEL, [identity_pk, nonce, h])` with
/// `h` the admission policy hash or the empty string. The label differs, so evidence of a KDS
/// holding an externally provided master secret never verifies as evidence of one that does not.
pub fn kds_attestation_report_data_bound(
    identity_pk: &[u8; 32],
    nonce: &[u8],
    admission_policy_hash: Option<&[u8; 32]>,
    origin: MasterSecretOrigin,
) -> ReportData {
    match origin {
        MasterSecretOrigin::Tee => {
            kds_attestation_report_data_with(identity_pk, nonce, admission_policy_hash)
        }
        MasterSecretOrigin::External => ReportData::hash_of(
            KDS_ATTESTATION_EXTERNAL_MASTER_LABEL,
            &[
                identity_pk,
                nonce,
                admission_policy_hash.map_or(&[][..], |h| &h[..]),
            ],
        ),
    }
}

/// SHA-256(`ADMISSION_POLICY_HASH_LABEL` ‖ canonical JSON of `policy`): the digest of a KDS
/// admission policy that its evidence binds and that clients pin.
pub fn admission_policy_hash(policy: &clave_attest::Policy) -> [u8; 32] {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(ADMISSION_POLICY_HASH_LABEL);
    h.update(policy.to_json().as_bytes());
    h.finalize().into()
}

/// Report data of a key release request: binds the engine's ephemeral X25519 public key and
/// the nonce the KDS issued.
pub fn release_report_data(ephemeral_pk: &[u8; 32], nonce: &[u8; NONCE_LEN]) -> ReportData {
    ReportData::hash_of(KEY_RELEASE_LABEL, &[ephemeral_pk, nonce])
}

/// Report data of a replica join request: binds the joining replica's ephemeral X25519 public
/// key and the nonce the existing replica issued.
pub fn replica_join_report_data(ephemeral_pk: &[u8; 32], nonce: &[u8; NONCE_LEN]) -> ReportData {
    ReportData::hash_of(REPLICA_JOIN_LABEL, &[ephemeral_pk, nonce])
}

/// Parses the caller nonce of `GET /v1/kds/attestation?nonce=…`.
///
/// Rule (applied by the KDS, and to be applied by callers to know which bytes were bound): a
/// value of even length made only of `[0-9a-f]` is hex; anything else is unpadded base64url.
/// The decoded nonce must be 1..=[`MAX_CALLER_NONCE_LEN`] bytes. The response echoes the bound
/// bytes as hex ([`AttestationResponse::nonce`]).
pub fn parse_caller_nonce(s: &str) -> Result<Vec<u8>, WireError> {
    let is_hex = s.len().is_multiple_of(2)
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let bytes = if is_hex {
        hex::decode(s).map_err(|_| WireError::Malformed {
            field: "nonce",
            reason: "bad hex",
        })?
    } else {
        b64::decode(s).map_err(|_| WireError::Malformed {
            field: "nonce",
            reason: "neither lowercase hex nor unpadded base64url",
        })?
    };
    if bytes.is_empty() || bytes.len() > MAX_CALLER_NONCE_LEN {
        return Err(WireError::Malformed {
            field: "nonce",
            reason: "length must be 1..=64 bytes",
        });
    }
    Ok(bytes)
}

/// HPKE-seals `plaintext` to an X25519 public key (RFC 9180 base mode, single shot,
/// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM; on aws-lc-rs, see `hpke_x25519`).
///
/// Returns `(enc, ciphertext)`. Used by the KDS for released keys ([`RELEASE_HPKE_INFO`], AAD =
/// spec id) and for the master secret sent to a joining replica ([`REPLICA_HPKE_INFO`], AAD =
/// the sending KDS's identity public key).
///
/// # Errors
/// [`WireError::BadPublicKey`] for a public key of low order; [`WireError::Seal`] otherwise.
pub fn seal_to_ephemeral(
    recipient_pk: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<(Vec<u8>, Vec<u8>), WireError> {
    // Any 32 bytes are an X25519 private key (clamped on use, RFC 7748).
    let mut sk = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(sk.as_mut());
    let sk_e = X25519PrivateKey::from_bytes(sk.as_ref()).map_err(|_| WireError::Seal)?;
    // The plaintext is a private key or the master secret: its copy is wiped if sealing fails
    // before it is encrypted in place.
    let mut buf = Zeroizing::new(Vec::with_capacity(plaintext.len() + 16));
    buf.extend_from_slice(plaintext);
    let enc = hpke_x25519::seal_single(
        recipient_pk,
        &sk_e,
        crate::ohttp::AEAD_AES_128_GCM,
        info,
        aad,
        &mut buf,
        0,
    )
    .map_err(|e| match e {
        crate::Error::InvalidPublicKey => WireError::BadPublicKey,
        _ => WireError::Seal,
    })?;
    Ok((enc.to_vec(), std::mem::take(&mut *buf)))
}

/// Opens what [`seal_to_ephemeral`] sealed, with the recipient's X25519 private key.
///
/// # Errors
/// [`WireError::Open`] for anything that does not open.
pub fn open_from_kds(
    recipient_sk: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    enc: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, WireError> {
    let sk = X25519PrivateKey::from_bytes(recipient_sk).map_err(|_| WireError::Open)?;
    hpke_x25519::open_single(
        &sk,
        enc,
        crate::ohttp::AEAD_AES_128_GCM,
        info,
        aad,
        ciphertext,
    )
    .map_err(|_| WireError::Open)
}

/// The X25519 public key of an X25519 private key (as HPKE's DHKEM uses it).
///
/// # Errors
/// [`WireError::BadPublicKey`] when aws-lc refuses the key (never for 32 bytes).
pub fn x25519_public_key(sk: &[u8; 32]) -> Result<[u8; 32], WireError> {
    X25519PrivateKey::from_bytes(sk)
        .map(|k| *k.public_key())
        .map_err(|_| WireError::BadPublicKey)
}

/// `GET /v1/kds/attestation` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationResponse {
    /// `clave_attest::Evidence::to_bytes()`; its report data is
    /// [`kds_attestation_report_data_with`]`(identity_public_key, nonce, admission hash)`.
    #[serde(with = "b64")]
    pub evidence: Vec<u8>,
    /// The KDS identity key (Ed25519) that signs every bundle.
    #[serde(with = "b64_32")]
    pub identity_public_key: [u8; 32],
    /// The nonce bytes that were bound, hex.
    #[serde(with = "hex_bytes")]
    pub nonce: Vec<u8>,
    /// The extra policy under which this KDS also admits replicas that do not run its own
    /// measurement (an upgrade path), or absent when it admits only its own measurement. When
    /// present, the report data is [`kds_attestation_report_data_with`]`(identity_public_key,
    /// nonce, Some(&admission_policy_hash(policy)))`, so it cannot be stripped or swapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission_policy: Option<clave_attest::Policy>,
    /// Where the KDS's master secret came from; absent means [`MasterSecretOrigin::Tee`]. The
    /// report data is [`kds_attestation_report_data_bound`] with it, so it cannot be stripped.
    #[serde(default, skip_serializing_if = "MasterSecretOrigin::is_tee")]
    pub master_secret_origin: MasterSecretOrigin,
}

/// `GET /v1/kds/keys` response.
///
/// `bundles` are signed key bundles, in this order: the code key, then invoke keys by ascending epoch (current, next). Two replicas
/// sharing a master secret answer byte-identical bodies for the same time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysResponse {
    /// The KDS identity key (Ed25519) that signed every bundle.
    #[serde(with = "b64_32")]
    pub identity_public_key: [u8; 32],
    /// The current invoke epoch (`now / epoch_seconds`).
    pub epoch: u64,
    /// Length of an invoke epoch in seconds.
    pub epoch_seconds: u64,
    /// Signed bundles (`{payload, signature}`, base64url); payloads are
    /// [`crate::bundle::KeyBundle`] payloads signed by `identity_public_key`.
    pub bundles: Vec<crate::signed::SignedObject>,
}

/// `POST /v1/kds/nonce` and `POST /v1/kds/replica/nonce` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NonceResponse {
    /// A fresh single-use nonce.
    #[serde(with = "b64_32")]
    pub nonce: [u8; NONCE_LEN],
    /// Unix seconds after which the KDS refuses it.
    pub expires_at: u64,
}

/// `POST /v1/kds/release` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// Canonical `KeySpec` bytes of the key asked for.
    #[serde(with = "b64")]
    pub spec: Vec<u8>,
    /// `clave_attest::Evidence::to_bytes()`, with report data
    /// [`release_report_data`]`(ephemeral_public_key, nonce)`.
    #[serde(with = "b64")]
    pub evidence: Vec<u8>,
    /// The engine's ephemeral X25519 public key; the key is sealed to it.
    #[serde(with = "b64_32")]
    pub ephemeral_public_key: [u8; 32],
    /// A nonce from `POST /v1/kds/nonce`.
    #[serde(with = "b64_32")]
    pub nonce: [u8; NONCE_LEN],
}

/// `POST /v1/kds/release` response: the derived private key, HPKE-sealed.
///
/// Open with [`open_from_kds`]`(ephemeral_sk, RELEASE_HPKE_INFO, &spec_id, &enc, &sealed_key)`.
/// The plaintext is the 32-byte X25519 private key of the spec's key config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseResponse {
    /// SHA-256 of the spec bytes (the AAD), hex.
    #[serde(with = "hex_32")]
    pub spec_id: [u8; 32],
    /// HPKE encapsulated key.
    #[serde(with = "b64")]
    pub enc: Vec<u8>,
    /// HPKE ciphertext of the private key.
    #[serde(with = "b64")]
    pub sealed_key: Vec<u8>,
}

/// `POST /v1/kds/replica/join` body, sent by a joining replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaJoinRequest {
    /// A nonce from `POST /v1/kds/replica/nonce` of the existing replica.
    #[serde(with = "b64_32")]
    pub nonce: [u8; NONCE_LEN],
    /// The joiner's evidence, with report data
    /// [`replica_join_report_data`]`(ephemeral_public_key, nonce)`.
    #[serde(with = "b64")]
    pub evidence: Vec<u8>,
    /// The joiner's ephemeral X25519 public key; the master secret is sealed to it.
    #[serde(with = "b64_32")]
    pub ephemeral_public_key: [u8; 32],
    /// The joiner's own fresh nonce; the existing replica's evidence must bind it.
    #[serde(with = "b64_32")]
    pub joiner_nonce: [u8; NONCE_LEN],
}

/// `POST /v1/kds/replica/join` response.
///
/// The joiner verifies `evidence` against its own admission rule (same measurement, or its
/// admission policy) with report data [`kds_attestation_report_data_with`]`(identity_public_key,
/// joiner_nonce, its own admission policy hash)` — replicas of one cluster share one admission
/// policy — opens the master with
/// [`open_from_kds`]`(ephemeral_sk, REPLICA_HPKE_INFO, &identity_public_key, …)`, and checks that
/// the master derives `identity_public_key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaJoinResponse {
    /// The existing replica's evidence.
    #[serde(with = "b64")]
    pub evidence: Vec<u8>,
    /// The existing replica's identity public key.
    #[serde(with = "b64_32")]
    pub identity_public_key: [u8; 32],
    /// HPKE encapsulated key.
    #[serde(with = "b64")]
    pub enc: Vec<u8>,
    /// HPKE ciphertext of the master secret.
    #[serde(with = "b64")]
    pub sealed_master: Vec<u8>,
    /// Where that master secret came from (absent: [`MasterSecretOrigin::Tee`]); the evidence
    /// binds it ([`kds_attestation_report_data_bound`]) and the joiner inherits it.
    #[serde(default, skip_serializing_if = "MasterSecretOrigin::is_tee")]
    pub master_secret_origin: MasterSecretOrigin,
}

/// What a release log entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogEvent {
    /// A key release request.
    KeyRelease,
    /// A replica join request (master secret release).
    ReplicaJoin,
    /// The KDS created its master secret (genesis).
    Genesis,
    /// The KDS obtained its master secret from another replica.
    Joined,
}

/// Outcome of a logged request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The key (or master) was released.
    Granted,
    /// The request was refused; see `reason`.
    Refused,
}

/// One line of the append-only release log (JSON lines). Never holds key material: only times,
/// spec ids, TEE kinds, measurements and refusal reasons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseLogEntry {
    /// Unix seconds.
    pub time: u64,
    /// What happened.
    pub event: LogEvent,
    /// The spec id asked for, hex (absent for replica events or an unparsable spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_id: Option<String>,
    /// The TEE kind of the requester's evidence (`insecure_simulated`, `sev_snp`, …), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tee_kind: Option<String>,
    /// The verified measurement of the requester, hex (only once evidence verified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement: Option<String>,
    /// Granted or refused.
    pub outcome: Outcome,
    /// The typed refusal reason (a problem type slug such as `nonce-reused`), if refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `GET /v1/kds/log` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseLogResponse {
    /// Entries, oldest first.
    pub entries: Vec<ReleaseLogEntry>,
}

/// Prefix of every KDS problem `type` URI; the slug follows (e.g. `urn:clave:kds:nonce-reused`).
pub const PROBLEM_TYPE_PREFIX: &str = "urn:clave:kds:";

/// RFC 9457 problem details, the body of every KDS error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `urn:clave:kds:<slug>`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short human-readable summary.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Optional detail (never key material).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Problem {
    /// The slug after [`PROBLEM_TYPE_PREFIX`], if the type has that prefix.
    pub fn slug(&self) -> Option<&str> {
        self.type_.strip_prefix(PROBLEM_TYPE_PREFIX)
    }
}

/// Unpadded base64url helpers used by the wire types.
pub mod b64 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Encodes as unpadded base64url.
    pub fn encode(bytes: &[u8]) -> String {
        crate::b64::encode(bytes)
    }

    /// Decodes unpadded base64url.
    pub fn decode(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
        crate::b64::decode(s)
    }

    /// serde `serialize_with`.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(bytes))
    }

    /// serde `deserialize_with`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        decode(&s).map_err(|_| serde::de::Error::custom("expected unpadded base64url"))
    }
}

/// `bytes` as a 32-byte array, or the error every 32-byte field reports.
fn exactly_32<E: serde::de::Error>(bytes: Vec<u8>) -> Result<[u8; 32], E> {
    bytes.try_into().map_err(|_| E::custom("expected 32 bytes"))
}

mod b64_32 {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        super::b64::serialize(bytes, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        super::exactly_32(super::b64::deserialize(d)?)
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        hex::decode(s.as_ref()).map_err(|_| serde::de::Error::custom("expected hex"))
    }
}

mod hex_32 {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        super::hex_bytes::serialize(bytes, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        super::exactly_32(super::hex_bytes::deserialize(d)?)
    }
}

#[cfg(test)]
mod tests;
