//! Small value types shared by evidence, claims and policy.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// The kind of trusted execution environment that produced a piece of evidence.
///
/// Serialised in snake_case (`insecure_simulated`, `sev_snp`, `tdx`, `sgx_dcap`, `nitro`). The
/// derived order (declaration order) is the canonical order of kind lists in a [`crate::Policy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeeKind {
    /// The insecure simulated TEE: anyone can forge its evidence. For development only.
    InsecureSimulated,
    /// AMD SEV-SNP.
    SevSnp,
    /// Intel TDX.
    Tdx,
    /// Intel SGX with DCAP quotes.
    SgxDcap,
    /// AWS Nitro Enclaves.
    Nitro,
}

impl TeeKind {
    /// Every kind, in canonical order.
    pub const ALL: [TeeKind; 5] = [
        TeeKind::InsecureSimulated,
        TeeKind::SevSnp,
        TeeKind::Tdx,
        TeeKind::SgxDcap,
        TeeKind::Nitro,
    ];

    /// The snake_case name used in JSON and in error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            TeeKind::InsecureSimulated => "insecure_simulated",
            TeeKind::SevSnp => "sev_snp",
            TeeKind::Tdx => "tdx",
            TeeKind::SgxDcap => "sgx_dcap",
            TeeKind::Nitro => "nitro",
        }
    }

    /// The one-byte tag of this kind in the evidence wire form.
    pub(crate) fn tag(self) -> u8 {
        match self {
            TeeKind::InsecureSimulated => 0x01,
            TeeKind::SevSnp => 0x02,
            TeeKind::Tdx => 0x03,
            TeeKind::SgxDcap => 0x04,
            TeeKind::Nitro => 0x05,
        }
    }

    /// The kind for a wire tag, if any.
    pub(crate) fn from_tag(tag: u8) -> Option<TeeKind> {
        TeeKind::ALL.into_iter().find(|k| k.tag() == tag)
    }

    /// Whether evidence of this kind carries its own timestamp (so that a maximum evidence age
    /// can be enforced). SNP, TDX and SGX reports have none; freshness there comes only from the
    /// nonce in the report data.
    pub fn has_timestamp(self) -> bool {
        matches!(self, TeeKind::InsecureSimulated | TeeKind::Nitro)
    }

    /// How many components this kind's [`Tcb`] has: SNP 4, TDX 16, SGX 17 (CPUSVN and PCESVN),
    /// Nitro 0 (no TCB version). `None` for the simulated TEE, whose TCB is configured (1 to 16).
    pub fn tcb_components(self) -> Option<usize> {
        match self {
            TeeKind::InsecureSimulated => None,
            TeeKind::SevSnp => Some(4),
            TeeKind::Tdx => Some(16),
            TeeKind::SgxDcap => Some(17),
            TeeKind::Nitro => Some(0),
        }
    }
}

impl fmt::Display for TeeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The 64 bytes of caller-chosen data bound into evidence (SNP `REPORT_DATA`, TDX/SGX
/// `REPORTDATA`, Nitro `user_data`). clave puts a hash of a nonce and a public key here.
///
/// Serialised as 128 lowercase hex characters. Compared in constant time.
#[derive(Clone, Copy)]
pub struct ReportData(pub [u8; 64]);

impl ReportData {
    /// All-zero report data.
    pub const ZERO: ReportData = ReportData([0; 64]);

    /// Wraps 64 bytes.
    pub const fn new(bytes: [u8; 64]) -> Self {
        ReportData(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    /// SHA-512 over a domain label and a list of parts, each prefixed with its length as a
    /// big-endian u64, so that different splits of the same bytes never collide.
    ///
    /// Use it to bind, for example, an ephemeral public key and a verifier nonce:
    /// `ReportData::hash_of(b"clave/v1/key-release", &[&pk, &nonce])`.
    pub fn hash_of(label: &[u8], parts: &[&[u8]]) -> Self {
        let mut h = Sha512::new();
        h.update((label.len() as u64).to_be_bytes());
        h.update(label);
        for p in parts {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p);
        }
        let out = h.finalize();
        let mut bytes = [0u8; 64];
        bytes.copy_from_slice(&out);
        ReportData(bytes)
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &ReportData) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl From<[u8; 64]> for ReportData {
    fn from(bytes: [u8; 64]) -> Self {
        ReportData(bytes)
    }
}

impl PartialEq for ReportData {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other)
    }
}
impl Eq for ReportData {}

impl fmt::Debug for ReportData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReportData({})", hex::encode(self.0))
    }
}

impl Serialize for ReportData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for ReportData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 64];
        hex::decode_to_slice(&s, &mut out)
            .map_err(|e| serde::de::Error::custom(format!("report data: {e}")))?;
        Ok(ReportData(out))
    }
}

/// Largest measurement or signer identity accepted anywhere (bytes).
pub const MAX_DIGEST_LEN: usize = 64;

macro_rules! hex_bytes_newtype {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub Vec<u8>);

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }

            /// Parses lowercase or uppercase hex.
            pub fn from_hex(s: &str) -> Result<Self, hex::FromHexError> {
                hex::decode(s).map($name)
            }

            /// Lowercase hex.
            pub fn to_hex(&self) -> String {
                hex::encode(&self.0)
            }
        }

        impl From<Vec<u8>> for $name {
            fn from(v: Vec<u8>) -> Self {
                $name(v)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.to_hex())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                let v = hex::decode(&s)
                    .map_err(|e| serde::de::Error::custom(format!(concat!($what, ": {}"), e)))?;
                if v.is_empty() || v.len() > MAX_DIGEST_LEN {
                    return Err(serde::de::Error::custom(format!(
                        concat!($what, ": length {} is not in 1..={}"),
                        v.len(),
                        MAX_DIGEST_LEN
                    )));
                }
                Ok($name(v))
            }
        }
    };
}

hex_bytes_newtype!(
    /// A launch measurement: what code the TEE runs (SNP `MEASUREMENT`, TDX `MRTD`, SGX
    /// `MRENCLAVE`, Nitro `PCR0`, simulated: a configured value or [`Measurement::of_binary`]).
    ///
    /// Serialised as lowercase hex (1 to 64 bytes).
    Measurement,
    "measurement"
);

hex_bytes_newtype!(
    /// The identity of whoever signed the TEE image, independent of its exact contents (SNP
    /// author/ID key digest, SGX `MRSIGNER`, Nitro `PCR8`). Serialised as lowercase hex.
    SignerId,
    "signer id"
);

impl Measurement {
    /// SHA-256 of a binary's bytes: the simulated TEE's stand-in for a launch measurement.
    /// The caller reads the file (this crate does no I/O).
    pub fn of_binary(bytes: &[u8]) -> Self {
        Measurement(Sha256::digest(bytes).to_vec())
    }
}

/// A trusted computing base version: the security version numbers of the platform's firmware
/// components, compared component by component.
///
/// Component order per kind: SNP `[boot_loader, tee, snp, microcode]`; TDX the 16 bytes of
/// `TEE_TCB_SVN`; SGX the 16 bytes of `CPUSVN` followed by `PCESVN`; simulated: whatever the
/// attester was configured with. Nitro has no TCB version (empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tcb(pub Vec<u16>);

impl Tcb {
    /// Whether every component is at least the corresponding component of `min`. TCBs with a
    /// different number of components are incomparable and never meet each other.
    pub fn meets(&self, min: &Tcb) -> bool {
        self.0.len() == min.0.len() && self.0.iter().zip(&min.0).all(|(a, b)| a >= b)
    }
}

impl fmt::Display for Tcb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{c}")?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_tags_round_trip_and_serde_names() {
        for k in TeeKind::ALL {
            assert_eq!(TeeKind::from_tag(k.tag()), Some(k));
            let json = serde_json::to_string(&k).expect("serialise kind");
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert_eq!(TeeKind::from_tag(0), None);
        assert_eq!(TeeKind::from_tag(0x06), None);
    }

    #[test]
    fn measurement_hex_serde_and_limits() {
        let m = Measurement::of_binary(b"hello");
        let json = serde_json::to_string(&m).expect("serialise");
        assert_eq!(json.len(), 2 + 64);
        assert_eq!(
            serde_json::from_str::<Measurement>(&json).expect("parse"),
            m
        );
        let refused = |text: &str, words: &str| {
            let err = serde_json::from_str::<Measurement>(text).expect_err(text);
            assert!(err.to_string().starts_with(words), "{text}: {err}");
        };
        refused("\"\"", "measurement: length 0 is not in 1..=64");
        refused("\"zz\"", "measurement: Invalid character");
        refused(
            &format!("\"{}\"", "00".repeat(65)),
            "measurement: length 65 is not in 1..=64",
        );
    }

    #[test]
    fn report_data_hash_is_split_sensitive() {
        let a = ReportData::hash_of(b"l", &[b"ab", b"c"]);
        let b = ReportData::hash_of(b"l", &[b"a", b"bc"]);
        assert_ne!(a, b);
        let json = serde_json::to_string(&a).expect("serialise");
        assert_eq!(serde_json::from_str::<ReportData>(&json).expect("parse"), a);
        let err = serde_json::from_str::<ReportData>("\"00\"").expect_err("1 byte");
        assert!(
            err.to_string()
                .starts_with("report data: Invalid string length"),
            "{err}"
        );
    }

    #[test]
    fn tcb_meets_is_componentwise() {
        let t = Tcb(vec![3, 0, 8, 115]);
        assert!(t.meets(&Tcb(vec![3, 0, 8, 115])));
        assert!(t.meets(&Tcb(vec![2, 0, 8, 100])));
        assert!(!t.meets(&Tcb(vec![4, 0, 0, 0])));
        assert!(!t.meets(&Tcb(vec![3, 0, 8])));
        assert!(Tcb::default().meets(&Tcb::default()));
    }
}
