//! Test-only AMD-style CRLs: DER X.509 v2 CRLs signed with RSASSA-PSS / SHA-384 (salt 48) by
//! a generated RSA key, with the algorithm identifier copied from the real Milan ARK. Shared by
//! the unit tests (`src/snp/crl/tests.rs`, through `#[path]`) and `tests/snp_crl.rs`.
//!
//! Nothing here can make production code trust the generated key: the verifier only ever
//! checks a CRL against the built-in, pinned ARK.

#![allow(dead_code)]

use std::time::Duration;

use der::asn1::{BitString, OctetString, UtcTime};
use der::{Decode, Encode};
use rsa::rand_core::{CryptoRng, RngCore};
use rsa::sha2::{Digest, Sha256};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::time::Time;

/// A deterministic RNG (SHA-256 in counter mode): reproducible test keys, no OS randomness.
pub struct TestRng {
    seed: [u8; 32],
    counter: u64,
    buf: [u8; 32],
    pos: usize,
}

impl TestRng {
    pub fn new(label: &str) -> TestRng {
        TestRng {
            seed: Sha256::digest(label.as_bytes()).into(),
            counter: 0,
            buf: [0; 32],
            pos: 32,
        }
    }
}

impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest {
            if self.pos == 32 {
                let mut h = Sha256::new();
                h.update(self.seed);
                h.update(self.counter.to_le_bytes());
                self.buf = h.finalize().into();
                self.counter += 1;
                self.pos = 0;
            }
            *d = self.buf[self.pos];
            self.pos += 1;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for TestRng {}

/// A 2048-bit test key, derived from `label` (the same label gives the same key).
pub fn test_key(label: &str) -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::new(&mut TestRng::new(label), 2048).expect("RSA key generation")
}

/// The subject (and issuer) name of a real, built-in ARK certificate.
pub fn subject_of(cert_der: &[u8]) -> Name {
    x509_cert::Certificate::from_der(cert_der)
        .expect("certificate")
        .tbs_certificate()
        .subject()
        .clone()
}

/// The serial number bytes of a certificate.
pub fn serial_of(cert_der: &[u8]) -> Vec<u8> {
    x509_cert::Certificate::from_der(cert_der)
        .expect("certificate")
        .tbs_certificate()
        .serial_number()
        .as_bytes()
        .to_vec()
}

/// The signature algorithm of a real ARK (RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48).
pub fn ark_algorithm(ark_der: &[u8]) -> AlgorithmIdentifierOwned {
    x509_cert::Certificate::from_der(ark_der)
        .expect("certificate")
        .signature_algorithm()
        .clone()
}

/// RSASSA-PSS / SHA-384 / MGF1-SHA-384 with another salt length.
pub fn pss_sha384_with_salt(salt: u8) -> AlgorithmIdentifierOwned {
    use rsa::pkcs1::der::Encode as _;
    let params = rsa::pkcs1::RsaPssParams::new::<rsa::sha2::Sha384>(salt)
        .to_der()
        .expect("params");
    AlgorithmIdentifierOwned {
        oid: der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10"),
        parameters: Some(der::Any::from_der(&params).expect("any")),
    }
}

/// One revoked entry: an optional `certificateIssuer` (indirect CRL), serial, date, and extra
/// entry extensions.
#[derive(Clone)]
pub struct TestEntry {
    pub certificate_issuer: Option<Name>,
    pub serial: Vec<u8>,
    pub revoked_at: u64,
    pub extra: Vec<Extension>,
}

impl TestEntry {
    pub fn direct(serial: &[u8], revoked_at: u64) -> TestEntry {
        TestEntry {
            certificate_issuer: None,
            serial: serial.to_vec(),
            revoked_at,
            extra: Vec::new(),
        }
    }
    pub fn indirect(issuer: Name, serial: &[u8], revoked_at: u64) -> TestEntry {
        TestEntry {
            certificate_issuer: Some(issuer),
            ..TestEntry::direct(serial, revoked_at)
        }
    }
}

/// What to put in a test CRL.
#[derive(Clone)]
pub struct CrlSpec {
    pub issuer: Name,
    pub this_update: u64,
    pub next_update: Option<u64>,
    pub entries: Vec<TestEntry>,
    pub extensions: Vec<Extension>,
    /// Inner (`tbsCertList.signature`) algorithm.
    pub algorithm: AlgorithmIdentifierOwned,
    /// Outer algorithm; `None` = the same as the inner one.
    pub outer_algorithm: Option<AlgorithmIdentifierOwned>,
    pub version: x509_cert::Version,
    /// Salt length actually used to sign.
    pub salt_len: usize,
}

impl CrlSpec {
    /// An empty CRL issued by `ark_der`'s subject, valid `this_update..=next_update`.
    pub fn new(ark_der: &[u8], this_update: u64, next_update: u64) -> CrlSpec {
        CrlSpec {
            issuer: subject_of(ark_der),
            this_update,
            next_update: Some(next_update),
            entries: Vec::new(),
            extensions: Vec::new(),
            algorithm: ark_algorithm(ark_der),
            outer_algorithm: None,
            version: x509_cert::Version::V2,
            salt_len: 48,
        }
    }
}

fn time(t: u64) -> Time {
    Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(t)).expect("UTCTime"))
}

/// An extension with a DER value.
pub fn extension(oid: &str, critical: bool, value_der: Vec<u8>) -> Extension {
    Extension {
        extn_id: der::asn1::ObjectIdentifier::new_unwrap(oid),
        critical,
        extn_value: OctetString::new(value_der).expect("octet string"),
    }
}

/// The DER CRL for `spec`, signed by `key`.
pub fn build_crl(spec: &CrlSpec, key: &rsa::RsaPrivateKey) -> Vec<u8> {
    use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
    let revoked: Vec<RevokedCert> = spec
        .entries
        .iter()
        .map(|e| {
            let mut exts = e.extra.clone();
            if let Some(issuer) = &e.certificate_issuer {
                let names = vec![x509_cert::ext::pkix::name::GeneralName::DirectoryName(
                    issuer.clone(),
                )];
                exts.push(extension("2.5.29.29", true, names.to_der().expect("names")));
            }
            RevokedCert {
                serial_number: SerialNumber::new(&e.serial).expect("serial"),
                revocation_date: time(e.revoked_at),
                crl_entry_extensions: if exts.is_empty() { None } else { Some(exts) },
            }
        })
        .collect();
    let tbs = TbsCertList {
        version: spec.version,
        signature: spec.algorithm.clone(),
        issuer: spec.issuer.clone(),
        this_update: time(spec.this_update),
        next_update: spec.next_update.map(time),
        revoked_certificates: if revoked.is_empty() {
            None
        } else {
            Some(revoked)
        },
        crl_extensions: if spec.extensions.is_empty() {
            None
        } else {
            Some(spec.extensions.clone())
        },
    };
    let tbs_der = tbs.to_der().expect("tbs");
    let signer =
        rsa::pss::SigningKey::<rsa::sha2::Sha384>::new_with_salt_len(key.clone(), spec.salt_len);
    let sig = signer.sign_with_rng(&mut TestRng::new("pss salt"), &tbs_der);
    CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: spec
            .outer_algorithm
            .clone()
            .unwrap_or_else(|| spec.algorithm.clone()),
        signature: BitString::from_bytes(&sig.to_vec()).expect("bit string"),
    }
    .to_der()
    .expect("crl")
}

/// PEM form of a DER CRL.
pub fn to_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN X509 CRL-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("ascii"));
        out.push('\n');
    }
    out.push_str("-----END X509 CRL-----\n");
    out
}
