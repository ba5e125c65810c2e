//! Sealed storage of the master secret.
//!
//! A [`Sealer`] provides a 256-bit key that only the same KDS measurement on the same platform can
//! obtain; the provided [`Sealer::seal`] / [`Sealer::unseal`] wrap data in a self-describing,
//! authenticated envelope:
//!
//! ```text
//! offset  len  field
//! 0       8    magic  "CLVSEAL\0"
//! 8       1    version (1)
//! 9       1    sealer kind (1 = insecure simulated, 2 = SEV-SNP derived key, 3 = master-keyed)
//! 10      32   measurement binding: SHA-256("clave/v1/seal-binding" ‖ measurement)
//! 42      12   AES-GCM nonce (random)
//! 54      ..   AES-256-GCM ciphertext ‖ 16-byte tag; AAD = bytes 0..54
//! ```
//!
//! The header is in the clear so that a blob sealed under another measurement or by another kind
//! of sealer is refused with a distinct error ([`Error::SealedUnderOtherMeasurement`],
//! [`Error::SealerKindMismatch`]) before any decryption is tried; the header is also the AAD, so
//! editing it makes decryption fail ([`Error::SealedStateCorrupt`]).
//!
//! # Real TEEs
//!
//! AMD SEV-SNP: [`crate::snp_seal::SevSnpDerivedKeySealer`], a key the firmware derives with
//! `MSG_KEY_REQ` (`SNP_GET_DERIVED_KEY` on `/dev/sev-guest`, feature `sev-guest`) from the VCEK,
//! the launch measurement and the guest policy (and a TCB floor when configured); the envelope is
//! unchanged. TDX and Nitro have no sealing key: there the master secret is never written to
//! disk; it lives in the memory of the replicas, or comes from an external key source at every
//! start ([`crate::start`]), and the KDS's small state of its own (the clock floor) is sealed with
//! [`MasterKeyedSealer`], a key derived from the master secret itself. SGX `EGETKEY` and a KMS
//! with attestation-bound key policies are not implemented.

use std::fmt;

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use hkdf::Hkdf;
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::Error;

/// Magic bytes that open every sealed blob.
pub const SEAL_MAGIC: [u8; 8] = *b"CLVSEAL\0";
/// Current sealed blob format version.
pub const SEAL_VERSION: u8 = 1;
/// Length of the authenticated header (magic, version, kind, binding, nonce).
pub const SEAL_HEADER_LEN: usize = 8 + 1 + 1 + 32 + 12;
/// Length of the AES-GCM tag.
pub const SEAL_TAG_LEN: usize = 16;

/// The published constant of the insecure simulated sealer. Anyone can compute its keys: it
/// protects nothing and exists so that `clave dev` runs without a TEE.
pub const INSECURE_SIMULATED_SEALING_CONSTANT: &[u8] =
    b"clave/v1/INSECURE-simulated-sealing-key/this-key-is-public-and-protects-nothing";

/// Which kind of sealing key protects a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealerKind {
    /// [`InsecureSimulatedSealer`]: a published constant, no protection.
    InsecureSimulated,
    /// SEV-SNP `MSG_KEY_REQ` derived key bound to the launch measurement
    /// ([`crate::snp_seal::SevSnpDerivedKeySealer`]).
    SevSnpDerivedKey,
    /// A key derived from the master secret and the measurement ([`MasterKeyedSealer`]): only
    /// holders of the master secret can open it, but it is not bound to the hardware.
    MasterKeyed,
}

impl SealerKind {
    /// The byte stored in the envelope.
    pub fn tag(self) -> u8 {
        match self {
            SealerKind::InsecureSimulated => 1,
            SealerKind::SevSnpDerivedKey => 2,
            SealerKind::MasterKeyed => 3,
        }
    }

    /// The kind of a stored byte.
    pub fn from_tag(tag: u8) -> Option<SealerKind> {
        match tag {
            1 => Some(SealerKind::InsecureSimulated),
            2 => Some(SealerKind::SevSnpDerivedKey),
            3 => Some(SealerKind::MasterKeyed),
            _ => None,
        }
    }

    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SealerKind::InsecureSimulated => "insecure_simulated",
            SealerKind::SevSnpDerivedKey => "sev_snp_derived_key",
            SealerKind::MasterKeyed => "master_keyed",
        }
    }
}

impl fmt::Display for SealerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The measurement binding stored in the envelope header.
pub fn measurement_binding(measurement: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"clave/v1/seal-binding");
    h.update(measurement);
    h.finalize().into()
}

/// A source of a sealing key that only this TEE measurement can obtain.
///
/// Implementors provide [`kind`](Sealer::kind), [`measurement_binding`](Sealer::measurement_binding)
/// and [`sealing_key`](Sealer::sealing_key); the envelope ([`seal`](Sealer::seal),
/// [`unseal`](Sealer::unseal)) is shared. A platform that seals by itself (SGX sealing, a KMS)
/// may override both.
pub trait Sealer: Send + Sync {
    /// Which kind of key this is.
    fn kind(&self) -> SealerKind;

    /// The binding of the measurement the key is tied to (see [`measurement_binding`]).
    fn measurement_binding(&self) -> [u8; 32];

    /// The 256-bit AES-GCM key. On hardware this is a platform request and may fail.
    fn sealing_key(&self) -> Result<Zeroizing<[u8; 32]>, Error>;

    /// Seals `plaintext` into an envelope (see the module docs).
    fn seal(&self, plaintext: &[u8], rng: &mut dyn CryptoRng) -> Result<Vec<u8>, Error> {
        let key = self.sealing_key()?;
        let cipher = Aes256Gcm::new_from_slice(key.as_slice())
            .map_err(|_| Error::Sealing("sealing key has the wrong length"))?;
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(SEAL_HEADER_LEN + plaintext.len() + SEAL_TAG_LEN);
        out.extend_from_slice(&SEAL_MAGIC);
        out.push(SEAL_VERSION);
        out.push(self.kind().tag());
        out.extend_from_slice(&self.measurement_binding());
        out.extend_from_slice(&nonce);
        let mut body = Zeroizing::new(plaintext.to_vec());
        cipher
            .encrypt_in_place(&nonce.into(), &out, &mut *body)
            .map_err(|_| Error::Sealing("encryption failed"))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens an envelope made by [`seal`](Sealer::seal) with the same kind and measurement.
    fn unseal(&self, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        if blob.len() < SEAL_MAGIC.len() || blob[..SEAL_MAGIC.len()] != SEAL_MAGIC {
            return Err(if SEAL_MAGIC.starts_with(blob) {
                Error::SealedStateTruncated { len: blob.len() }
            } else {
                Error::SealedStateBadMagic
            });
        }
        if blob.len() < SEAL_HEADER_LEN + SEAL_TAG_LEN {
            return Err(Error::SealedStateTruncated { len: blob.len() });
        }
        let version = blob[8];
        if version != SEAL_VERSION {
            return Err(Error::SealedStateVersion(version));
        }
        let kind = SealerKind::from_tag(blob[9]).ok_or(Error::SealedStateCorrupt)?;
        if kind != self.kind() {
            return Err(Error::SealerKindMismatch {
                sealed: kind,
                sealer: self.kind(),
            });
        }
        if blob[10..42] != self.measurement_binding() {
            return Err(Error::SealedUnderOtherMeasurement);
        }
        let (header, body) = blob.split_at(SEAL_HEADER_LEN);
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&header[42..54]);
        let key = self.sealing_key()?;
        let cipher = Aes256Gcm::new_from_slice(key.as_slice())
            .map_err(|_| Error::Sealing("sealing key has the wrong length"))?;
        let mut buf = Zeroizing::new(body.to_vec());
        cipher
            .decrypt_in_place(&nonce.into(), header, &mut *buf)
            .map_err(|_| Error::SealedStateCorrupt)?;
        Ok(buf)
    }
}

/// INSECURE: a sealer whose key anyone can compute (HKDF of a published constant and the
/// measurement). It only keeps blobs of different simulated measurements apart; it protects
/// nothing. For `clave dev` and tests.
pub struct InsecureSimulatedSealer {
    measurement: Vec<u8>,
}

impl InsecureSimulatedSealer {
    /// A sealer for the simulated TEE with this measurement.
    pub fn new(measurement: &[u8]) -> Self {
        InsecureSimulatedSealer {
            measurement: measurement.to_vec(),
        }
    }
}

impl fmt::Debug for InsecureSimulatedSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InsecureSimulatedSealer")
            .field("measurement", &hex::encode(&self.measurement))
            .finish()
    }
}

impl Sealer for InsecureSimulatedSealer {
    fn kind(&self) -> SealerKind {
        SealerKind::InsecureSimulated
    }

    fn measurement_binding(&self) -> [u8; 32] {
        measurement_binding(&self.measurement)
    }

    fn sealing_key(&self) -> Result<Zeroizing<[u8; 32]>, Error> {
        let hk = Hkdf::<Sha256>::new(
            Some(b"clave/v1/insecure-simulated-seal"),
            INSECURE_SIMULATED_SEALING_CONSTANT,
        );
        let mut key = Zeroizing::new([0u8; 32]);
        hk.expand(&self.measurement, key.as_mut_slice())
            .map_err(|_| Error::Sealing("hkdf expand"))?;
        Ok(key)
    }
}

/// A sealer for a KDS without a hardware sealing key: its key is derived from the master secret
/// and the measurement, so only a holder of the master secret (a replica of this cluster, and with
/// an external key source whoever provides it) can open or forge what it seals. It seals the
/// KDS's own state (the clock floor), never the master secret itself.
pub struct MasterKeyedSealer {
    key: Zeroizing<[u8; 32]>,
    measurement: Vec<u8>,
}

impl MasterKeyedSealer {
    /// The sealer of the KDS with this master secret and measurement.
    pub fn new(master: &clave_proto::MasterSecret, measurement: &[u8]) -> Result<Self, Error> {
        let hk = Hkdf::<Sha256>::new(
            Some(b"clave/v1/kds-seal/master-keyed"),
            master.expose_secret(),
        );
        let mut key = Zeroizing::new([0u8; 32]);
        hk.expand(measurement, key.as_mut_slice())
            .map_err(|_| Error::Sealing("hkdf expand"))?;
        Ok(MasterKeyedSealer {
            key,
            measurement: measurement.to_vec(),
        })
    }
}

impl fmt::Debug for MasterKeyedSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKeyedSealer")
            .field("measurement", &hex::encode(&self.measurement))
            .finish_non_exhaustive()
    }
}

impl Sealer for MasterKeyedSealer {
    fn kind(&self) -> SealerKind {
        SealerKind::MasterKeyed
    }

    fn measurement_binding(&self) -> [u8; 32] {
        measurement_binding(&self.measurement)
    }

    fn sealing_key(&self) -> Result<Zeroizing<[u8; 32]>, Error> {
        Ok(self.key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> impl CryptoRng {
        rand_core::UnwrapErr(rand::rngs::SysRng)
    }

    #[test]
    fn round_trip() {
        let s = InsecureSimulatedSealer::new(b"m1");
        let blob = s.seal(b"master secret bytes", &mut rng()).expect("seal");
        assert_eq!(blob.len(), SEAL_HEADER_LEN + 19 + SEAL_TAG_LEN);
        assert_eq!(
            s.unseal(&blob).expect("unseal").as_slice(),
            b"master secret bytes"
        );
    }

    #[test]
    fn master_keyed_sealer_opens_only_with_the_same_master_and_measurement() {
        let m1 = clave_proto::MasterSecret::from_bytes([1; 32]);
        let m2 = clave_proto::MasterSecret::from_bytes([2; 32]);
        let s = MasterKeyedSealer::new(&m1, b"m").expect("sealer");
        let blob = s.seal(b"clock", &mut rng()).expect("seal");
        assert_eq!(blob[9], SealerKind::MasterKeyed.tag());
        assert_eq!(s.unseal(&blob).expect("unseal").as_slice(), b"clock");
        let other_master = MasterKeyedSealer::new(&m2, b"m").expect("sealer");
        assert!(matches!(
            other_master.unseal(&blob),
            Err(Error::SealedStateCorrupt)
        ));
        let other_measurement = MasterKeyedSealer::new(&m1, b"n").expect("sealer");
        assert!(matches!(
            other_measurement.unseal(&blob),
            Err(Error::SealedUnderOtherMeasurement)
        ));
        assert!(matches!(
            InsecureSimulatedSealer::new(b"m").unseal(&blob),
            Err(Error::SealerKindMismatch { .. })
        ));
        assert!(!format!("{s:?}").contains(&hex::encode([1u8; 32])));
    }

    #[test]
    fn other_measurement_is_refused_distinctly() {
        let blob = InsecureSimulatedSealer::new(b"m1")
            .seal(b"x", &mut rng())
            .expect("seal");
        let err = InsecureSimulatedSealer::new(b"m2")
            .unseal(&blob)
            .expect_err("must refuse");
        assert!(matches!(err, Error::SealedUnderOtherMeasurement), "{err}");
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let s = InsecureSimulatedSealer::new(b"m1");
        let blob = s.seal(&[7u8; 32], &mut rng()).expect("seal");
        for i in 0..blob.len() {
            for bit in [0x01u8, 0x80] {
                let mut b = blob.clone();
                b[i] ^= bit;
                let r = s.unseal(&b);
                assert!(
                    matches!(
                        r,
                        Err(Error::SealedStateBadMagic
                            | Error::SealedStateVersion(_)
                            | Error::SealerKindMismatch { .. }
                            | Error::SealedUnderOtherMeasurement
                            | Error::SealedStateCorrupt)
                    ),
                    "flip at byte {i}: {r:?}"
                );
            }
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        let s = InsecureSimulatedSealer::new(b"m1");
        let blob = s.seal(&[7u8; 32], &mut rng()).expect("seal");
        for len in 0..blob.len() {
            let r = s.unseal(&blob[..len]);
            assert!(
                match r {
                    Err(Error::SealedStateTruncated { len: l }) => l == len,
                    // Long enough for a header and a tag: the tag no longer matches.
                    Err(Error::SealedStateCorrupt) => len >= SEAL_HEADER_LEN + SEAL_TAG_LEN,
                    _ => false,
                },
                "truncation to {len}: {r:?}"
            );
        }
        assert!(matches!(
            s.unseal(&blob[..20]),
            Err(Error::SealedStateTruncated { len: 20 })
        ));
        assert!(matches!(
            s.unseal(b"not a sealed blob at all, no"),
            Err(Error::SealedStateBadMagic)
        ));
    }
}
