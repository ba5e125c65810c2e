//! The insecure simulated TEE: an attester and verifier for machines without TEE hardware.
//!
//! **Anyone can forge this evidence.** Reports are signed with an Ed25519 key whose seed is the
//! public constant [`INSECURE_ROOT_SEED`]; the signature only proves the report was not garbled,
//! never that any TEE exists. That is why [`crate::verify()`] refuses simulated evidence unless the
//! policy lists `insecure_simulated` *and* sets `allow_insecure_simulated`, and why every
//! [`Claims`] it yields has `insecure: true`.
//!
//! # Report layout (version 1)
//!
//! All integers big-endian. The signature is Ed25519 over [`SIGNING_DOMAIN`] followed by every
//! byte before the signature.
//!
//! ```text
//! version        u16   = 1
//! flags          u8    bit 0: debug; bit 1: timestamp present; other bits zero
//! measurement    u8 length (1..=64) || bytes
//! signer         u8 length (0..=64) || bytes   (0: no signer)
//! product_id     u16
//! svn            u32
//! tcb            u8 count (0..=16) || count × u16
//! report_data    64 bytes
//! timestamp      u64   unix seconds; zero when the flag is clear
//! signature      64 bytes
//! ```
//!
//! The encoding is canonical: every report has exactly one encoding, and the parser rejects
//! everything else.

use std::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::Error;
use crate::attester::Attester;
use crate::byte_reader::Reader;
use crate::claims::Claims;
use crate::evidence::Evidence;
use crate::types::{MAX_DIGEST_LEN, Measurement, ReportData, SignerId, Tcb, TeeKind};
use crate::verify::Verifier;

/// The seed of the insecure root key. It is public on purpose: the simulated TEE protects
/// nothing, and this constant makes that impossible to forget.
pub const INSECURE_ROOT_SEED: [u8; 32] = *b"clave-insecure-simulated-root-01";

/// Prefix of every signed message, so the insecure root key signs nothing else by accident.
pub const SIGNING_DOMAIN: &[u8] = b"clave/v1/insecure-simulated-report\0";

/// The report format version written by this code.
pub const REPORT_VERSION: u16 = 1;

/// Maximum number of TCB components in a simulated report.
pub const MAX_TCB_COMPONENTS: usize = 16;

const FLAG_DEBUG: u8 = 0b01;
const FLAG_TIMESTAMP: u8 = 0b10;
const SIGNATURE_LEN: usize = 64;

/// The insecure root signing key (derived from [`INSECURE_ROOT_SEED`]).
pub fn insecure_root_key() -> SigningKey {
    SigningKey::from_bytes(&INSECURE_ROOT_SEED)
}

/// The insecure root public key that [`InsecureSimulatedVerifier::new`] trusts.
pub fn insecure_root_public_key() -> VerifyingKey {
    insecure_root_key().verifying_key()
}

/// The contents of a simulated report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsecureSimulatedReport {
    /// The measurement (1 to 64 bytes).
    pub measurement: Measurement,
    /// The signer identity, if configured (1 to 64 bytes).
    pub signer: Option<SignerId>,
    /// The product id.
    pub product_id: u16,
    /// The security version.
    pub svn: u32,
    /// The simulated platform TCB (at most [`MAX_TCB_COMPONENTS`] components).
    pub tcb: Tcb,
    /// Whether the simulated TEE claims to run in debug mode.
    pub debug: bool,
    /// The caller's report data.
    pub report_data: ReportData,
    /// When the report was made (unix seconds), if the attester has a clock.
    pub timestamp: Option<u64>,
}

impl InsecureSimulatedReport {
    /// The unsigned body in its canonical layout.
    fn body(&self) -> Result<Vec<u8>, Error> {
        let m = self.measurement.as_bytes();
        if m.is_empty() || m.len() > MAX_DIGEST_LEN {
            return Err(Error::InvalidArgument(
                "simulated measurement must be 1 to 64 bytes",
            ));
        }
        let s = self.signer.as_ref().map(|s| s.as_bytes()).unwrap_or(&[]);
        if self.signer.is_some() && (s.is_empty() || s.len() > MAX_DIGEST_LEN) {
            return Err(Error::InvalidArgument(
                "simulated signer must be 1 to 64 bytes",
            ));
        }
        if self.tcb.0.len() > MAX_TCB_COMPONENTS {
            return Err(Error::InvalidArgument(
                "simulated TCB has more than 16 components",
            ));
        }
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&REPORT_VERSION.to_be_bytes());
        let mut flags = 0;
        if self.debug {
            flags |= FLAG_DEBUG;
        }
        if self.timestamp.is_some() {
            flags |= FLAG_TIMESTAMP;
        }
        out.push(flags);
        // Lengths were checked above to fit a u8.
        out.push(m.len() as u8);
        out.extend_from_slice(m);
        out.push(s.len() as u8);
        out.extend_from_slice(s);
        out.extend_from_slice(&self.product_id.to_be_bytes());
        out.extend_from_slice(&self.svn.to_be_bytes());
        out.push(self.tcb.0.len() as u8);
        for c in &self.tcb.0 {
            out.extend_from_slice(&c.to_be_bytes());
        }
        out.extend_from_slice(self.report_data.as_bytes());
        out.extend_from_slice(&self.timestamp.unwrap_or(0).to_be_bytes());
        Ok(out)
    }

    /// Encodes and signs the report with `key`.
    pub fn sign(&self, key: &SigningKey) -> Result<Vec<u8>, Error> {
        let mut out = self.body()?;
        let sig = key.sign(&signed_message(&out));
        out.extend_from_slice(&sig.to_bytes());
        Ok(out)
    }

    /// Checks the signature against `root`, then parses the body strictly. Returns the report
    /// only if both succeed.
    pub fn verify(bytes: &[u8], root: &VerifyingKey) -> Result<InsecureSimulatedReport, Error> {
        if bytes.len() < SIGNATURE_LEN {
            return Err(Error::Truncated {
                what: "simulated report",
            });
        }
        let (body, sig) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
        let mut sig_bytes = [0u8; SIGNATURE_LEN];
        sig_bytes.copy_from_slice(sig);
        let sig = Signature::from_bytes(&sig_bytes);
        root.verify_strict(&signed_message(body), &sig)
            .map_err(|_| Error::BadSignature(TeeKind::InsecureSimulated))?;
        InsecureSimulatedReport::parse_body(body)
    }

    /// Parses an unsigned body. Strict: any non-canonical encoding is an error.
    fn parse_body(body: &[u8]) -> Result<InsecureSimulatedReport, Error> {
        const WHAT: &str = "simulated report";
        let malformed = |reason| Error::Malformed { what: WHAT, reason };
        let mut r = Reader::new(body, WHAT);
        let version = r.u16_be()?;
        if version != REPORT_VERSION {
            return Err(Error::UnsupportedVersion {
                what: WHAT,
                version: version.into(),
            });
        }
        let flags = r.u8()?;
        if flags & !(FLAG_DEBUG | FLAG_TIMESTAMP) != 0 {
            return Err(malformed("unknown flag bits set"));
        }
        let mlen = usize::from(r.u8()?);
        if mlen == 0 || mlen > MAX_DIGEST_LEN {
            return Err(malformed("measurement length not in 1..=64"));
        }
        let measurement = Measurement(r.take(mlen)?.to_vec());
        let slen = usize::from(r.u8()?);
        if slen > MAX_DIGEST_LEN {
            return Err(malformed("signer length over 64"));
        }
        let signer = (slen > 0)
            .then(|| r.take(slen).map(|s| SignerId(s.to_vec())))
            .transpose()?;
        let product_id = r.u16_be()?;
        let svn = r.u32_be()?;
        let ncomp = usize::from(r.u8()?);
        if ncomp > MAX_TCB_COMPONENTS {
            return Err(malformed("more than 16 TCB components"));
        }
        let tcb = Tcb((0..ncomp).map(|_| r.u16_be()).collect::<Result<_, _>>()?);
        let report_data = ReportData(r.array()?);
        let ts = r.u64_be()?;
        r.finish()?;
        let timestamp = if flags & FLAG_TIMESTAMP != 0 {
            Some(ts)
        } else if ts == 0 {
            None
        } else {
            return Err(malformed("timestamp set without its flag"));
        };
        Ok(InsecureSimulatedReport {
            measurement,
            signer,
            product_id,
            svn,
            tcb,
            debug: flags & FLAG_DEBUG != 0,
            report_data,
            timestamp,
        })
    }

    /// The claims this report makes (always `insecure: true`).
    pub fn claims(&self) -> Claims {
        Claims {
            kind: TeeKind::InsecureSimulated,
            measurement: self.measurement.clone(),
            signer: self.signer.clone(),
            product_id: Some(self.product_id),
            svn: self.svn,
            tcb: self.tcb.clone(),
            debug: self.debug,
            report_data: self.report_data,
            issued_at: self.timestamp,
            insecure: true,
            platform: Default::default(),
        }
    }
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNING_DOMAIN.len() + body.len());
    msg.extend_from_slice(SIGNING_DOMAIN);
    msg.extend_from_slice(body);
    msg
}

/// A clock for the simulated attester: returns unix seconds.
pub use crate::clock::Clock;

/// The insecure simulated TEE attester. Produces [`Evidence::Simulated`] signed with the
/// insecure root key. See the module docs for why this is insecure.
#[derive(Clone)]
pub struct InsecureSimulatedAttester {
    template: InsecureSimulatedReport,
    key: SigningKey,
    clock: Option<Clock>,
}

impl fmt::Debug for InsecureSimulatedAttester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is public anyway, but keep the habit: no key material in Debug.
        f.debug_struct("InsecureSimulatedAttester")
            .field("measurement", &self.template.measurement)
            .field("signer", &self.template.signer)
            .field("svn", &self.template.svn)
            .field("tcb", &self.template.tcb)
            .field("debug", &self.template.debug)
            .field("clock", &self.clock.is_some())
            .finish_non_exhaustive()
    }
}

impl InsecureSimulatedAttester {
    /// An attester with this measurement (1 to 64 bytes, e.g. [`Measurement::of_binary`] of the
    /// running executable): no signer, product 0, SVN 0, empty TCB, debug off, no clock.
    pub fn new(measurement: Measurement) -> Result<Self, Error> {
        let len = measurement.as_bytes().len();
        if len == 0 || len > MAX_DIGEST_LEN {
            return Err(Error::InvalidArgument(
                "simulated measurement must be 1 to 64 bytes",
            ));
        }
        Ok(InsecureSimulatedAttester {
            template: InsecureSimulatedReport {
                measurement,
                signer: None,
                product_id: 0,
                svn: 0,
                tcb: Tcb::default(),
                debug: false,
                report_data: ReportData::ZERO,
                timestamp: None,
            },
            key: insecure_root_key(),
            clock: None,
        })
    }

    /// Sets the signer identity, product id and SVN the reports claim.
    pub fn with_signer(
        mut self,
        signer: SignerId,
        product_id: u16,
        svn: u32,
    ) -> Result<Self, Error> {
        let len = signer.as_bytes().len();
        if len == 0 || len > MAX_DIGEST_LEN {
            return Err(Error::InvalidArgument(
                "simulated signer must be 1 to 64 bytes",
            ));
        }
        self.template.signer = Some(signer);
        self.template.product_id = product_id;
        self.template.svn = svn;
        Ok(self)
    }

    /// Sets the TCB the reports claim (at most 16 components).
    pub fn with_tcb(mut self, tcb: Tcb) -> Result<Self, Error> {
        if tcb.0.len() > MAX_TCB_COMPONENTS {
            return Err(Error::InvalidArgument(
                "simulated TCB has more than 16 components",
            ));
        }
        self.template.tcb = tcb;
        Ok(self)
    }

    /// Makes the reports claim debug mode (every policy refuses those; for tests).
    pub fn with_debug(mut self, debug: bool) -> Self {
        self.template.debug = debug;
        self
    }

    /// Gives the attester a clock so reports carry a timestamp (this crate has none of its own).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Signs with another key instead of the insecure root key. [`crate::verify()`] refuses such
    /// evidence; an [`InsecureSimulatedVerifier::with_root`] for the matching public key accepts it.
    pub fn with_signing_key(mut self, key: SigningKey) -> Self {
        self.key = key;
        self
    }

    /// Produces evidence with an explicit timestamp (`None`: no timestamp).
    pub fn attest_at(
        &self,
        report_data: &ReportData,
        timestamp: Option<u64>,
    ) -> Result<Evidence, Error> {
        let report = InsecureSimulatedReport {
            report_data: *report_data,
            timestamp,
            ..self.template.clone()
        };
        Ok(Evidence::Simulated {
            report: report.sign(&self.key)?,
        })
    }
}

impl Attester for InsecureSimulatedAttester {
    fn kind(&self) -> TeeKind {
        TeeKind::InsecureSimulated
    }

    fn attest(&self, report_data: &ReportData) -> Result<Evidence, Error> {
        self.attest_at(report_data, self.clock.as_ref().map(|c| c()))
    }

    fn measurement(&self) -> Measurement {
        self.template.measurement.clone()
    }
}

/// Verifies simulated evidence against a root public key (by default the insecure root).
/// Cryptography only: it applies no policy.
#[derive(Clone, Debug)]
pub struct InsecureSimulatedVerifier {
    root: VerifyingKey,
}

impl InsecureSimulatedVerifier {
    /// A verifier trusting the published insecure root key.
    pub fn new() -> Self {
        InsecureSimulatedVerifier {
            root: insecure_root_public_key(),
        }
    }

    /// A verifier trusting another root key.
    pub fn with_root(root: VerifyingKey) -> Self {
        InsecureSimulatedVerifier { root }
    }
}

impl Default for InsecureSimulatedVerifier {
    fn default() -> Self {
        InsecureSimulatedVerifier::new()
    }
}

impl Verifier for InsecureSimulatedVerifier {
    fn kind(&self) -> TeeKind {
        TeeKind::InsecureSimulated
    }

    fn verify_evidence(&self, evidence: &Evidence) -> Result<Claims, Error> {
        match evidence {
            Evidence::Simulated { report } => {
                Ok(InsecureSimulatedReport::verify(report, &self.root)?.claims())
            }
            _ => Err(Error::InvalidArgument(
                "evidence is not of the simulated kind",
            )),
        }
    }
}
