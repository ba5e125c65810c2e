//! Verification of a platform's attestation and key bundles (DESIGN.md §3), independent of HTTP.

use clave_attest::Policy;
use clave_attest::{Claims, Evidence, TeeKind};
use clave_proto::bundle::KeyBundle;
use clave_proto::kds_api::{
    AttestationResponse, KeysResponse, MasterSecretOrigin, admission_policy_hash,
    kds_attestation_report_data_bound,
};
use clave_proto::spec::KeyPurpose;
use ed25519_dalek::VerifyingKey;

use crate::error::AttestationError;
use crate::trust::{TrustPolicy, policy_within};

/// The result of a successful verification: what was checked, and the keys one may seal to.
#[derive(Clone, Debug)]
pub struct Verified {
    /// Unix seconds of the verification.
    pub verified_at: u64,
    /// What the KDS evidence says (kind, measurement, TCB...), after the policy accepted it.
    pub kds_claims: Claims,
    /// The attested KDS identity key (Ed25519) that signed the bundles.
    pub identity_public_key: [u8; 32],
    /// The nonce the evidence binds (ours).
    pub nonce: Vec<u8>,
    /// The admission policy the KDS runs with, if any (replicas it admits beyond its own
    /// measurement), with its hash as bound into the evidence; it is one the trust policy lists.
    pub kds_admission_policy: Option<(Policy, [u8; 32])>,
    /// Where the KDS's master secret came from, as its evidence binds it; `External` only when
    /// the trust policy accepts it.
    pub kds_master_secret_origin: MasterSecretOrigin,
    /// The current invoke epoch the KDS reported.
    pub epoch: u64,
    /// The code key (developers seal code to it).
    pub code_key: KeyBundle,
    /// The invoke keys valid now or later, ascending epoch.
    pub invoke_keys: Vec<KeyBundle>,
}

impl Verified {
    /// Whether anything verified involves the insecure simulated TEE: the KDS evidence, a key
    /// spec that may release its key to a simulated engine, or the KDS's admission policy.
    #[must_use]
    pub fn insecure(&self) -> bool {
        let admits_simulated =
            |p: &Policy| p.allow_insecure_simulated || p.accepts_kind(TeeKind::InsecureSimulated);
        self.kds_claims.insecure
            || self.kds_claims.kind == TeeKind::InsecureSimulated
            || admits_simulated(&self.code_key.spec.policy)
            || self
                .invoke_keys
                .iter()
                .any(|k| admits_simulated(&k.spec.policy))
            || self
                .kds_admission_policy
                .as_ref()
                .is_some_and(|(p, _)| admits_simulated(p))
    }

    /// The invoke key to seal to at `now`: the valid one of the highest epoch not in the future.
    #[must_use]
    pub fn invoke_key(&self, now: u64) -> Option<&KeyBundle> {
        self.invoke_keys
            .iter()
            .filter(|b| b.check_validity(now).is_ok())
            .max_by_key(|b| b.spec.epoch)
    }

    /// Until when (unix seconds) this result may be reused given `max_age_secs`: the earlier of
    /// the cache age and the end of the code key's validity.
    #[must_use]
    pub fn usable_until(&self, max_age_secs: u64) -> u64 {
        self.verified_at
            .saturating_add(max_age_secs)
            .min(self.code_key.not_after)
    }

    /// What was verified, as sentences for people.
    #[must_use]
    pub fn describe(&self) -> Vec<String> {
        let c = &self.kds_claims;
        let mut out = Vec::new();
        if self.insecure() {
            out.push(
                "WARNING: the KDS runs on the INSECURE simulated TEE: anyone can forge this evidence, nothing is confidential."
                    .to_owned(),
            );
        }
        out.push(format!(
            "The key service (KDS) proved it runs in a {} TEE with measurement {}, which your trust policy pins.",
            kind_words(c.kind),
            c.measurement
        ));
        if !c.tcb.0.is_empty() {
            out.push(format!("Its platform TCB is {}.", c.tcb));
        }
        out.push("Debug mode is off.".to_owned());
        out.push(format!(
            "The evidence binds your fresh nonce {} and the KDS identity key {}.",
            hex::encode(&self.nonce),
            hex::encode(self.identity_public_key)
        ));
        match &self.kds_admission_policy {
            None => out.push(
                "The KDS hands its master secret only to replicas proving the same TEE kind and measurement as itself (no admission policy)."
                    .to_owned(),
            ),
            Some((p, hash)) => out.push(format!(
                "The KDS also admits replicas under an admission policy (hash {}, bound into its evidence, accepted by your trust policy): {}.",
                hex::encode(hash),
                policy_words(p)
            )),
        }
        if self.kds_master_secret_origin == MasterSecretOrigin::External {
            out.push(
                "WARNING: the KDS's master secret was provided by an external key source (bound into its evidence, accepted by your trust policy): whoever provided it can derive every key."
                    .to_owned(),
            );
        }
        out.push(format!(
            "That identity key signed {} key bundle(s); each signature and validity window checked out.",
            1 + self.invoke_keys.len()
        ));
        out.push(format!(
            "The code key (spec {}) is released only to engines your engine policy accepts: {}.",
            self.code_key.spec.id(),
            policy_words(&self.code_key.spec.policy)
        ));
        for k in &self.invoke_keys {
            out.push(format!(
                "The invoke key of epoch {} (spec {}, valid {}..{}) is released only to: {}.",
                k.spec.epoch,
                k.spec.id(),
                k.not_before,
                k.not_after,
                policy_words(&k.spec.policy)
            ));
        }
        out
    }
}

fn kind_words(kind: TeeKind) -> &'static str {
    match kind {
        TeeKind::InsecureSimulated => "simulated (INSECURE)",
        TeeKind::SevSnp => "AMD SEV-SNP",
        TeeKind::Tdx => "Intel TDX",
        TeeKind::SgxDcap => "Intel SGX",
        TeeKind::Nitro => "AWS Nitro",
    }
}

/// A policy in words.
#[must_use]
pub fn policy_words(p: &clave_attest::Policy) -> String {
    let kinds: Vec<&str> = p.accepted_kinds.iter().map(|k| kind_words(*k)).collect();
    let ident = match &p.identity {
        clave_attest::Identity::Measurements(ms) => {
            let ms: Vec<String> = ms.iter().map(|m| m.to_hex()).collect();
            format!("measurement {}", ms.join(" or "))
        }
        clave_attest::Identity::Signer(s) => {
            format!(
                "images signed by {} with security version >= {}",
                s.id, s.min_svn
            )
        }
    };
    format!("{} TEEs with {ident}", kinds.join(" or "))
}

/// Verify an attestation answer and a key list against `trust`, for our `nonce`, at `now`.
///
/// Steps (all must pass): the evidence decodes; simulated evidence only if the trust policy
/// allows it; the echoed nonce is ours; an admission policy the KDS publishes is one the trust
/// policy lists; a master secret from an external key source only if the trust policy accepts it;
/// the evidence satisfies the KDS policy with report data
/// `kds_attestation_report_data_bound(identity_pk, nonce, admission policy hash, origin)`; the key
/// list names the same identity key;
/// every bundle's signature verifies under it and is valid at `now`; each bundle's spec policy is
/// no broader than the client's engine policy; there is a code key and a current invoke key.
///
/// # Errors
/// [`AttestationError`] naming the first failed step.
pub fn verify_platform(
    trust: &TrustPolicy,
    nonce: &[u8],
    attestation: &AttestationResponse,
    keys: &KeysResponse,
    now: u64,
) -> Result<Verified, AttestationError> {
    let evidence =
        Evidence::from_bytes(&attestation.evidence).map_err(AttestationError::Evidence)?;
    if evidence.kind() == TeeKind::InsecureSimulated && !trust.allow_insecure_simulated {
        return Err(AttestationError::InsecureRefused);
    }
    if attestation.nonce != nonce {
        return Err(AttestationError::NonceMismatch);
    }
    let admission = match &attestation.admission_policy {
        None => None,
        Some(p) => {
            let hash = admission_policy_hash(p);
            if !trust
                .kds_admission_policies
                .iter()
                .any(|q| admission_policy_hash(q) == hash)
            {
                return Err(AttestationError::AdmissionPolicyRefused {
                    hash: hex::encode(hash),
                    words: policy_words(p),
                });
            }
            Some((p.clone(), hash))
        }
    };
    let origin = attestation.master_secret_origin;
    if origin == MasterSecretOrigin::External && !trust.accept_external_master_secret {
        return Err(AttestationError::ExternalMasterSecretRefused);
    }
    let expected = kds_attestation_report_data_bound(
        &attestation.identity_public_key,
        nonce,
        admission.as_ref().map(|(_, h)| h),
        origin,
    );
    let claims = clave_attest::verify(&evidence, &trust.kds_policy, &expected, now)
        .map_err(AttestationError::Evidence)?;
    if claims.insecure && !trust.allow_insecure_simulated {
        return Err(AttestationError::InsecureRefused);
    }
    if keys.identity_public_key != attestation.identity_public_key {
        return Err(AttestationError::IdentityMismatch);
    }
    let vk = VerifyingKey::from_bytes(&attestation.identity_public_key)
        .map_err(|_| AttestationError::Malformed("identity key is not an Ed25519 key".into()))?;
    let mut code_key = None;
    let mut invoke_keys = Vec::new();
    for signed in &keys.bundles {
        let bundle =
            KeyBundle::from_payload(&signed.verify(&vk).map_err(AttestationError::Bundle)?)
                .map_err(AttestationError::Bundle)?;
        let purpose = match bundle.spec.purpose {
            KeyPurpose::Code => "code",
            KeyPurpose::Invoke => "invoke",
        };
        policy_within(
            &bundle.spec.policy,
            &trust.engine_policy,
            trust.allow_insecure_simulated,
        )
        .map_err(|reason| AttestationError::SpecTooBroad { purpose, reason })?;
        // Expired bundles are useless; future ones (next epoch) are kept for later.
        if now > bundle.not_after {
            continue;
        }
        match bundle.spec.purpose {
            KeyPurpose::Code => {
                bundle
                    .check_validity(now)
                    .map_err(AttestationError::Bundle)?;
                code_key = Some(bundle);
            }
            KeyPurpose::Invoke => invoke_keys.push(bundle),
        }
    }
    invoke_keys.sort_by_key(|b| b.spec.epoch);
    let code_key = code_key.ok_or(AttestationError::MissingKey("code"))?;
    let verified = Verified {
        verified_at: now,
        kds_claims: claims,
        identity_public_key: attestation.identity_public_key,
        nonce: nonce.to_vec(),
        kds_admission_policy: admission,
        kds_master_secret_origin: origin,
        epoch: keys.epoch,
        code_key,
        invoke_keys,
    };
    if verified.invoke_key(now).is_none() {
        return Err(AttestationError::MissingKey("invoke"));
    }
    Ok(verified)
}
