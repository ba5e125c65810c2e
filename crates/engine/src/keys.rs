//! Key acquisition by attested key release.
//!
//! 1. A fresh random nonce → KDS attestation → `clave_attest::verify` against the engine's KDS
//!    policy with report data `kds_attestation_report_data_with(identity_pk, nonce, hash of the
//!    KDS's published admission policy, if any)`.
//! 2. Key bundles → each signature verified with that identity key; each bundle parsed; bundles
//!    that are already expired are refused.
//! 3. For every spec not already held: a KDS nonce, an ephemeral X25519 key, own evidence with
//!    report data `release_report_data(eph_pk, nonce)`, release, open with the spec id as AAD,
//!    and a check that the released private key's public key is the bundle's (refused otherwise).
//!
//! Keys live only in memory ([`clave_proto::ServerKey`] zeroizes its private key on drop). Keys of
//! past epochs are kept for a grace window after their bundle's `not_after`.
//!
//! The next epoch's invoke key is released ahead of time (its bundle is published before it is
//! valid). Decapsulation tries every held invoke key with the request's key id; validity is
//! enforced at refresh time (expired bundles are refused, keys past their grace window are
//! dropped), so an engine whose refreshes keep failing keeps serving with the keys it holds.

use std::collections::BTreeMap;

use clave_attest::{Attester, Evidence, Policy};
use clave_proto::bundle::KeyBundle;
use clave_proto::kds_api::{self, RELEASE_HPKE_INFO, ReleaseRequest};
use clave_proto::ohttp::PrivateKey;
use clave_proto::spec::KeyPurpose;
use clave_proto::{ServerKey, SpecId};
use ed25519_dalek::VerifyingKey;
use zeroize::Zeroizing;

use crate::Error;
use crate::kds_client::KdsClient;

/// One released key and what its bundle said about it.
#[derive(Clone, Debug)]
pub(crate) struct HeldKey {
    pub(crate) purpose: KeyPurpose,
    pub(crate) epoch: u64,
    pub(crate) not_before: u64,
    pub(crate) not_after: u64,
    pub(crate) key: ServerKey,
}

/// The keys held at one moment; replaced as a whole on refresh.
#[derive(Debug)]
pub(crate) struct KeyRing {
    pub(crate) identity: [u8; 32],
    pub(crate) held: BTreeMap<SpecId, HeldKey>,
    /// Code keys (all held, tried by key id).
    pub(crate) code: Vec<ServerKey>,
    /// Invoke keys (all held, tried by key id).
    pub(crate) invoke: Vec<ServerKey>,
}

impl KeyRing {
    fn new(identity: [u8; 32], held: BTreeMap<SpecId, HeldKey>) -> Self {
        let pick = |p: KeyPurpose| {
            held.values()
                .filter(|h| h.purpose == p)
                .map(|h| h.key.clone())
                .collect::<Vec<_>>()
        };
        let code = pick(KeyPurpose::Code);
        let invoke = pick(KeyPurpose::Invoke);
        Self {
            identity,
            held,
            code,
            invoke,
        }
    }

    /// The invoke epochs held, ascending.
    pub(crate) fn invoke_epochs(&self) -> Vec<u64> {
        self.held
            .values()
            .filter(|h| h.purpose == KeyPurpose::Invoke)
            .map(|h| h.epoch)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}

/// What key acquisition needs besides the KDS.
pub(crate) struct Acquire<'a> {
    pub(crate) kds: &'a dyn KdsClient,
    pub(crate) attester: &'a (dyn Attester + Send + Sync),
    pub(crate) kds_policy: &'a Policy,
    pub(crate) key_grace_secs: u64,
}

fn random32() -> Zeroizing<[u8; 32]> {
    let mut b = Zeroizing::new([0u8; 32]);
    rand::fill(&mut b[..]);
    b
}

fn kds_err(call: &'static str) -> impl FnOnce(crate::KdsError) -> Error {
    move |source| Error::Kds { call, source }
}

impl Acquire<'_> {
    /// Run the whole flow at `now`, reusing keys of `previous` whose bundle is unchanged.
    pub(crate) async fn run(&self, previous: Option<&KeyRing>, now: u64) -> Result<KeyRing, Error> {
        let identity = self.attest_kds(now).await?;
        let vk = VerifyingKey::from_bytes(&identity).map_err(|_| Error::KdsIdentityMismatch)?;
        let keys = self.kds.keys().await.map_err(kds_err("keys"))?;
        if keys.identity_public_key != identity {
            return Err(Error::KdsIdentityMismatch);
        }
        let mut bundles = Vec::with_capacity(keys.bundles.len());
        for signed in &keys.bundles {
            let payload = signed.verify(&vk).map_err(Error::BadBundle)?;
            let bundle = KeyBundle::from_payload(&payload).map_err(Error::BadBundle)?;
            match bundle.check_validity(now) {
                Ok(()) => {}
                // The next epoch's key is published ahead of time: fetch it now, use it later.
                Err(clave_proto::Error::NotYetValid { .. }) => {}
                Err(e) => return Err(Error::BadBundle(e)),
            }
            bundles.push(bundle);
        }
        for (purpose, name) in [(KeyPurpose::Code, "code"), (KeyPurpose::Invoke, "invoke")] {
            if !bundles
                .iter()
                .any(|b| b.spec.purpose == purpose && b.check_validity(now).is_ok())
            {
                return Err(Error::MissingKey { purpose: name });
            }
        }

        let mut held = BTreeMap::new();
        // Keys of earlier refreshes stay for the grace window after their validity.
        if let Some(prev) = previous {
            for (id, h) in &prev.held {
                if h.not_after.saturating_add(self.key_grace_secs) >= now {
                    held.insert(*id, h.clone());
                }
            }
        }
        for bundle in bundles {
            let spec_id = bundle.spec.id();
            if let Some(h) = held.get_mut(&spec_id)
                && h.key.config() == &bundle.key_config
            {
                h.not_before = bundle.not_before;
                h.not_after = bundle.not_after;
                continue;
            }
            let key = self.release(&bundle, &spec_id).await?;
            held.insert(
                spec_id,
                HeldKey {
                    purpose: bundle.spec.purpose,
                    epoch: bundle.spec.epoch,
                    not_before: bundle.not_before,
                    not_after: bundle.not_after,
                    key,
                },
            );
        }
        Ok(KeyRing::new(identity, held))
    }

    /// Verify the KDS's evidence for a fresh nonce; returns its attested identity key.
    async fn attest_kds(&self, now: u64) -> Result<[u8; 32], Error> {
        let nonce = random32();
        let att = self
            .kds
            .attestation(nonce.to_vec())
            .await
            .map_err(kds_err("attestation"))?;
        if att.nonce.as_slice() != nonce.as_slice() {
            return Err(Error::KdsNonceMismatch);
        }
        let evidence = Evidence::from_bytes(&att.evidence).map_err(Error::KdsAttestation)?;
        // A KDS that admits replicas under an admission policy binds its hash: recompute it
        // from the published policy (it cannot be stripped or swapped without failing here).
        let admission = att
            .admission_policy
            .as_ref()
            .map(kds_api::admission_policy_hash);
        // Likewise where its master secret came from: the engine works with either, the binding
        // only keeps the host from hiding it (clients decide whether to accept it).
        let expected = kds_api::kds_attestation_report_data_bound(
            &att.identity_public_key,
            &nonce[..],
            admission.as_ref(),
            att.master_secret_origin,
        );
        let claims = clave_attest::verify(&evidence, self.kds_policy, &expected, now)
            .map_err(Error::KdsAttestation)?;
        tracing::info!(
            tee = claims.kind.as_str(),
            insecure = claims.insecure,
            admission_policy = admission.map(hex::encode).as_deref().unwrap_or("none"),
            master_secret_origin = att.master_secret_origin.as_str(),
            "KDS attestation verified"
        );
        Ok(att.identity_public_key)
    }

    /// Attested release of one bundle's private key.
    async fn release(&self, bundle: &KeyBundle, spec_id: &SpecId) -> Result<ServerKey, Error> {
        let spec_hex = spec_id.to_hex();
        let nonce = self.kds.nonce().await.map_err(kds_err("nonce"))?;
        let eph_sk = random32();
        let eph_pk = kds_api::x25519_public_key(&eph_sk).map_err(|_| Error::ReleaseOpen {
            spec_id: spec_hex.clone(),
        })?;
        let report_data = kds_api::release_report_data(&eph_pk, &nonce.nonce);
        let evidence = self
            .attester
            .attest(&report_data)
            .map_err(Error::OwnAttestation)?;
        let req = ReleaseRequest {
            spec: bundle.spec.to_bytes(),
            evidence: evidence.to_bytes(),
            ephemeral_public_key: eph_pk,
            nonce: nonce.nonce,
        };
        let resp = self.kds.release(req).await.map_err(kds_err("release"))?;
        if &resp.spec_id != spec_id.as_bytes() {
            return Err(Error::ReleaseOpen { spec_id: spec_hex });
        }
        let secret = kds_api::open_from_kds(
            &eph_sk,
            RELEASE_HPKE_INFO,
            spec_id.as_bytes(),
            &resp.enc,
            &resp.sealed_key,
        )
        .map_err(|_| Error::ReleaseOpen {
            spec_id: spec_hex.clone(),
        })?;
        let mismatch = || Error::ReleasedKeyMismatch {
            spec_id: spec_hex.clone(),
        };
        let private =
            PrivateKey::from_bytes(bundle.key_config.kem(), &secret).map_err(|_| mismatch())?;
        if private.public_key().as_slice() != bundle.key_config.public_key() {
            return Err(mismatch());
        }
        let key = ServerKey::new(bundle.key_config.clone(), private).map_err(|_| mismatch())?;
        tracing::info!(
            purpose = ?bundle.spec.purpose,
            epoch = bundle.spec.epoch,
            key_id = bundle.key_config.key_id().0,
            "key released"
        );
        Ok(key)
    }
}
