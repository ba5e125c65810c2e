//! Stateless key derivation from the master secret.
//!
//! * OHTTP key for a spec: `ikm = HKDF-SHA256(salt = none, IKM = M, info = "clave/v1/key" ||
//!   spec_id, L = 32)`, then RFC 9180 `DeriveKeyPair(ikm)` of the KEM. For any KEM other than
//!   DHKEM(X25519) the info is suffixed with the 2-byte KEM id, so the two keys of one spec are
//!   independent. Key id = `spec_id[0]`; suites = [HKDF-SHA256/AES-128-GCM].
//! * Identity key: Ed25519 seed = `HKDF-SHA256(salt = none, IKM = M, info = "clave/v1/identity",
//!   L = 32)`.

use ed25519_dalek::SigningKey;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::ohttp::{Kem, KeyConfig, PrivateKey, ServerKey, SymmetricSuite};
use crate::spec::KeySpec;
use crate::types::{MasterSecret, SpecId};

/// HKDF info prefix of derived OHTTP keys.
pub const INFO_KEY: &[u8] = b"clave/v1/key";
/// HKDF info of the identity key.
pub const INFO_IDENTITY: &[u8] = b"clave/v1/identity";

/// A derived key: the public configuration plus the private key. `Debug` prints no secret.
#[derive(Clone, Debug)]
pub struct DerivedKey {
    /// The OHTTP key configuration published in the key bundle.
    pub key_config: KeyConfig,
    /// The private key (released only to engines that satisfy the spec's policy).
    pub private: PrivateKey,
}

impl DerivedKey {
    /// Pair configuration and private key for decapsulation.
    pub fn server_key(&self) -> Result<ServerKey> {
        ServerKey::new(self.key_config.clone(), self.private.clone())
    }
}

fn hkdf32(master: &MasterSecret, info: &[&[u8]]) -> Result<Zeroizing<[u8; 32]>> {
    let hk = hkdf::Hkdf::<Sha256>::new(None, master.expose_secret());
    let mut out = Zeroizing::new([0u8; 32]);
    hk.expand_multi_info(info, out.as_mut())
        .map_err(|_| Error::Internal("hkdf expand"))?;
    Ok(out)
}

/// Derive the DHKEM(X25519) OHTTP key of `spec`. Same inputs, byte-identical output.
pub fn derive_key(master: &MasterSecret, spec: &KeySpec) -> Result<DerivedKey> {
    derive_key_for_id(master, &spec.id(), Kem::X25519HkdfSha256)
}

/// Derive the key of `spec` for a chosen KEM (e.g. [`Kem::XWing`]).
pub fn derive_key_with_kem(master: &MasterSecret, spec: &KeySpec, kem: Kem) -> Result<DerivedKey> {
    derive_key_for_id(master, &spec.id(), kem)
}

/// Derive from a spec id directly (what a KDS does when it has already hashed the spec).
pub fn derive_key_for_id(master: &MasterSecret, spec_id: &SpecId, kem: Kem) -> Result<DerivedKey> {
    let kem_id = kem.id().to_be_bytes();
    let ikm = match kem {
        Kem::X25519HkdfSha256 => hkdf32(master, &[INFO_KEY, spec_id.as_bytes()])?,
        _ => hkdf32(master, &[INFO_KEY, spec_id.as_bytes(), &kem_id])?,
    };
    let private = PrivateKey::derive(kem, ikm.as_ref());
    // No low-order check (an X25519 operation per key): the public key is computed here from a
    // clamped private scalar, a multiple of the base point's prime-order subgroup generator, so
    // it cannot be of low order. Its length is the KEM's by construction.
    let key_config = KeyConfig::new_prevalidated(
        spec_id.key_id(),
        kem,
        private.public_key(),
        vec![SymmetricSuite::DEFAULT],
    );
    Ok(DerivedKey {
        key_config,
        private,
    })
}

/// The KDS identity key (Ed25519) derived from the master secret.
pub fn identity_key(master: &MasterSecret) -> Result<SigningKey> {
    let seed = hkdf32(master, &[INFO_IDENTITY])?;
    Ok(SigningKey::from_bytes(&seed))
}
