//! The crate's error type.

use crate::policy::PolicyError;
use crate::types::{Measurement, SignerId, Tcb, TeeKind};

/// Everything that can go wrong while decoding, verifying or appraising evidence, or while
/// producing it.
///
/// Variants fall in four groups: malformed input (peer data that does not parse), failed
/// cryptography, a policy refusal (the evidence is genuine but not acceptable), and attester or
/// caller problems. Use [`Error::is_policy_refusal`] to tell a refusal from broken input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- malformed input -------------------------------------------------------------------
    /// The input ended before `what` was complete.
    #[error("truncated {what}")]
    Truncated {
        /// The structure or field being read.
        what: &'static str,
    },
    /// Bytes were left over after a complete structure.
    #[error("{count} trailing bytes after {what}")]
    TrailingBytes {
        /// The structure that was complete.
        what: &'static str,
        /// How many bytes followed it.
        count: usize,
    },
    /// The evidence envelope does not start with the expected magic bytes.
    #[error("not clave evidence (bad magic)")]
    BadMagic,
    /// A format version this code does not understand.
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion {
        /// The structure carrying the version.
        what: &'static str,
        /// The version found.
        version: u32,
    },
    /// An evidence kind tag that names no known TEE.
    #[error("unknown evidence kind tag {0:#04x}")]
    UnknownKind(u8),
    /// Input larger than this crate accepts.
    #[error("{what} is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// The structure that is too large.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A field holds a value the format does not allow.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The structure or field.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },

    // ---- cryptography ------------------------------------------------------------------------
    /// The evidence signature (or certificate chain) does not verify.
    #[error("{0} evidence signature does not verify")]
    BadSignature(TeeKind),
    /// Cryptographic verification of this kind is not implemented yet, so it is never accepted.
    #[error("verification of {0} evidence is not supported yet")]
    Unsupported(TeeKind),
    /// A certificate does not parse or is not acceptable in its position.
    #[error("{kind} certificate {which}: {reason}")]
    BadCertificate {
        /// The evidence kind.
        kind: TeeKind,
        /// Which certificate (role and subject).
        which: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A certificate's signature does not verify under its issuer's key.
    #[error("{kind} certificate {which}: signature does not verify under its issuer")]
    BadCertificateSignature {
        /// The evidence kind.
        kind: TeeKind,
        /// Which certificate (role and subject).
        which: String,
    },
    /// The chain ends in a root that is not one of the built-in, pinned roots.
    #[error("{kind} chain ends in an untrusted root (SHA-256 {fingerprint})")]
    UntrustedRoot {
        /// The evidence kind.
        kind: TeeKind,
        /// SHA-256 of the root's DER (hex).
        fingerprint: String,
    },
    /// A certificate (or piece of collateral) is not valid at the verification time.
    #[error("{kind} {which} is not valid at {now} (valid {not_before}..={not_after})")]
    CertificateNotValidAt {
        /// The evidence kind.
        kind: TeeKind,
        /// Which certificate or collateral.
        which: String,
        /// Start of validity (unix seconds).
        not_before: u64,
        /// End of validity (unix seconds).
        not_after: u64,
        /// The verification time.
        now: u64,
    },
    /// An algorithm, key type or signing-key kind this crate does not accept.
    #[error("{kind}: unsupported {what}")]
    UnsupportedAlgorithm {
        /// The evidence kind.
        kind: TeeKind,
        /// What is not supported.
        what: &'static str,
    },
    /// A required endorsement (certificate, collateral) was not supplied.
    #[error("{kind}: missing endorsement: {what}")]
    MissingEndorsement {
        /// The evidence kind.
        kind: TeeKind,
        /// What is missing.
        what: &'static str,
    },
    /// An endorsement does not belong to this evidence (SNP: the VCEK's hwID or TCB extensions
    /// differ from the report).
    #[error("{kind}: endorsement does not match the evidence: {what}")]
    EndorsementMismatch {
        /// The evidence kind.
        kind: TeeKind,
        /// Which field differs.
        what: &'static str,
    },
    /// SEV-SNP report with a masked (all-zero) chip id: the VCEK cannot be bound to the chip.
    #[error("sev_snp report has a masked chip_id (MASK_CHIP_ID); the VCEK cannot be matched to it")]
    ChipIdMasked,
    /// A CRL (SEV-SNP: AMD's ARK-signed CRL) does not parse or has a form this crate refuses
    /// (not DER X.509 v2, no `nextUpdate`, a delta CRL, an unknown critical extension, ...).
    #[error("{kind} CRL is unusable: {reason}")]
    CrlMalformed {
        /// The evidence kind.
        kind: TeeKind,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The CRL is not issued by the pinned root that issued the chain (a CRL of another
    /// product, or of an unknown issuer).
    #[error("{kind} CRL is issued by {issuer}, not by the pinned {expected}")]
    CrlWrongIssuer {
        /// The evidence kind.
        kind: TeeKind,
        /// The CRL's issuer name.
        issuer: String,
        /// The root the chain ends in.
        expected: String,
    },
    /// The CRL's signature does not verify under the pinned root's key.
    #[error("{kind} CRL signature does not verify under the pinned {issuer}")]
    CrlBadSignature {
        /// The evidence kind.
        kind: TeeKind,
        /// The root whose key was used.
        issuer: String,
    },
    /// The CRL was issued after the verification time (beyond the allowed clock skew).
    #[error("{kind} CRL is not yet valid at {now} (thisUpdate {this_update})")]
    CrlNotYetValid {
        /// The evidence kind.
        kind: TeeKind,
        /// The CRL's `thisUpdate` (unix seconds).
        this_update: u64,
        /// The verification time.
        now: u64,
    },
    /// The CRL's `nextUpdate` has passed: a newer CRL must be fetched.
    #[error("{kind} CRL expired at {next_update} (now {now})")]
    CrlExpired {
        /// The evidence kind.
        kind: TeeKind,
        /// The CRL's `nextUpdate` (unix seconds).
        next_update: u64,
        /// The verification time.
        now: u64,
    },
    /// A certificate of the chain is listed in the CRL.
    #[error("{kind} certificate {which} (serial {serial}) is revoked since {revoked_at}")]
    CertificateRevoked {
        /// The evidence kind.
        kind: TeeKind,
        /// Which certificate (role and subject).
        which: String,
        /// Its serial number (hex).
        serial: String,
        /// The revocation date in the CRL (unix seconds).
        revoked_at: u64,
    },
    /// DCAP quote verification (dcap-qvl) failed.
    #[error("{kind}: quote verification failed: {reason}")]
    QuoteVerification {
        /// The evidence kind.
        kind: TeeKind,
        /// dcap-qvl's reason.
        reason: String,
    },

    // ---- policy refusals ---------------------------------------------------------------------
    /// The policy itself is invalid; nothing is accepted under it.
    #[error("invalid policy: {0}")]
    InvalidPolicy(#[from] PolicyError),
    /// The policy does not list this TEE kind.
    #[error("TEE kind {0} is not accepted by the policy")]
    KindNotAccepted(TeeKind),
    /// Evidence from the insecure simulated TEE, under a policy that does not explicitly allow it.
    #[error("insecure simulated evidence is not allowed by the policy")]
    InsecureNotAllowed,
    /// The TEE runs with debugging enabled (its memory is readable by the host). Never accepted.
    #[error("the TEE has debugging enabled")]
    DebugEnabled,
    /// The measurement is not in the policy's set.
    #[error("measurement {measurement} is not allowed by the policy")]
    MeasurementNotAllowed {
        /// The measurement found in the evidence.
        measurement: Measurement,
    },
    /// The signer identity (or product id) differs from the policy's.
    #[error("signer {} (product {:?}) is not allowed by the policy", signer.as_ref().map(|s| s.to_hex()).unwrap_or_else(|| "none".into()), product_id)]
    SignerNotAllowed {
        /// The signer found in the evidence, if the format has one.
        signer: Option<SignerId>,
        /// The product id found in the evidence, if the format has one.
        product_id: Option<u16>,
    },
    /// The security version is below the policy's minimum.
    #[error("security version {svn} is below the minimum {min}")]
    SvnTooLow {
        /// The SVN found.
        svn: u32,
        /// The policy's minimum.
        min: u32,
    },
    /// The platform TCB is below the policy's minimum for this kind (or not comparable to it).
    #[error("TCB {tcb} is below the minimum {min}")]
    TcbTooLow {
        /// The TCB found.
        tcb: Tcb,
        /// The policy's minimum.
        min: Tcb,
    },
    /// SEV-SNP: the report was requested from a VMPL above the policy's maximum.
    #[error("sev_snp report from VMPL {vmpl}, above the policy's maximum {max}")]
    VmplNotAllowed {
        /// The VMPL in the report.
        vmpl: u32,
        /// The policy's maximum.
        max: u32,
    },
    /// A measurement register (Nitro PCR, TDX RTMR/MRCONFIGID, SNP host data) differs from the
    /// policy's value, or is missing.
    #[error("{kind} register {register} is {actual}, the policy requires {expected}")]
    RegisterMismatch {
        /// The evidence kind.
        kind: TeeKind,
        /// The register (`PCR1`, `RTMR0`, `HOST_DATA`, ...).
        register: String,
        /// The policy's value (hex).
        expected: String,
        /// The evidence's value (hex, or `missing`).
        actual: String,
    },
    /// DCAP: the platform's TCB status is not in the policy's accepted list.
    #[error("{kind} TCB status {status} is not accepted by the policy (accepted: {accepted})")]
    TcbStatusNotAccepted {
        /// The evidence kind.
        kind: TeeKind,
        /// The status dcap-qvl computed.
        status: String,
        /// The accepted statuses.
        accepted: String,
    },
    /// DCAP: a platform property the policy refuses (dynamic platform, cached keys, SMT).
    #[error("{kind} platform has {flag}, which the policy refuses")]
    PlatformFlagNotAllowed {
        /// The evidence kind.
        kind: TeeKind,
        /// The flag.
        flag: &'static str,
    },
    /// TDX: a TD attribute the policy requires is missing (SEPT_VE_DISABLE) or one it refuses is
    /// set.
    #[error("tdx TD attributes {attributes:#018x}: {reason}")]
    TdAttributesNotAllowed {
        /// The TD attributes.
        attributes: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The policy requires revocation checking (`snp.revocation: required`) but the evidence
    /// was verified without a CRL.
    #[error("the policy requires a revocation check of the {0} chain, but no CRL was supplied")]
    RevocationNotChecked(TeeKind),
    /// The report data differs from the expected value (wrong nonce or key binding: a replay or
    /// a relay).
    #[error("report data does not match the expected value")]
    UserDataMismatch,
    /// The evidence is older than the policy's maximum age.
    #[error("evidence issued at {issued_at} is older than {max_age_secs} s at {now}")]
    Expired {
        /// The evidence timestamp (unix seconds).
        issued_at: u64,
        /// The verifier's time.
        now: u64,
        /// The policy's maximum age.
        max_age_secs: u64,
    },
    /// The evidence timestamp lies in the future beyond the allowed clock skew.
    #[error("evidence issued at {issued_at} lies in the future (now {now})")]
    IssuedInFuture {
        /// The evidence timestamp (unix seconds).
        issued_at: u64,
        /// The verifier's time.
        now: u64,
    },
    /// The policy limits evidence age but this evidence carries no timestamp although its format
    /// has one.
    #[error("evidence carries no timestamp but the policy limits its age")]
    MissingTimestamp,

    // ---- attester and caller -----------------------------------------------------------------
    /// A caller passed an argument this crate cannot use (not peer input).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// An attester could not talk to its device or file system.
    #[error("attester I/O on {what}: {source}")]
    AttesterIo {
        /// The file or device.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The attester's device answered something it should not have.
    #[error("attester: {0}")]
    Attester(String),
}

impl Error {
    /// Whether this error is a policy refusal of otherwise well-formed, correctly signed
    /// evidence (as opposed to malformed input, a bad signature, or an attester failure).
    pub fn is_policy_refusal(&self) -> bool {
        matches!(
            self,
            Error::InvalidPolicy(_)
                | Error::KindNotAccepted(_)
                | Error::InsecureNotAllowed
                | Error::DebugEnabled
                | Error::MeasurementNotAllowed { .. }
                | Error::SignerNotAllowed { .. }
                | Error::SvnTooLow { .. }
                | Error::TcbTooLow { .. }
                | Error::UserDataMismatch
                | Error::Expired { .. }
                | Error::IssuedInFuture { .. }
                | Error::MissingTimestamp
                | Error::VmplNotAllowed { .. }
                | Error::RegisterMismatch { .. }
                | Error::TcbStatusNotAccepted { .. }
                | Error::PlatformFlagNotAllowed { .. }
                | Error::TdAttributesNotAllowed { .. }
                | Error::RevocationNotChecked(_)
        )
    }
}
