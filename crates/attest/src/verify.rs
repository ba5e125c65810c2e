//! The verifier role (RATS): cryptographic verification, then appraisal against a policy.
//!
//! [`verify()`] runs [`verify_evidence`] (signature / certificate chain per kind, yielding
//! [`Claims`]) and then [`appraise`], which runs the separate policy checks in a fixed order:
//! [`check_kind`], [`check_insecure`], [`check_debug`], [`check_identity`], [`check_tcb`],
//! [`check_report_data`], [`check_age`]. Each check has its own error variant.

use crate::Error;
use crate::claims::Claims;
use crate::evidence::Evidence;
use crate::policy::{Identity, Policy};
use crate::simulated::InsecureSimulatedVerifier;
use crate::types::{ReportData, TeeKind};

/// How far in the future (seconds) an evidence timestamp may lie, to absorb clock skew between
/// attester and verifier.
pub const MAX_CLOCK_SKEW_SECS: u64 = 60;

/// Checks the cryptography of one kind of evidence and extracts its claims. Applies no policy.
pub trait Verifier {
    /// The kind of evidence this verifier understands.
    fn kind(&self) -> TeeKind;

    /// Verifies signatures / certificate chains and returns the claims the evidence makes.
    fn verify_evidence(&self, evidence: &Evidence) -> Result<Claims, Error>;
}

/// Verifies `evidence` and appraises it against `policy`: the one call every trust decision
/// goes through.
///
/// `expected` is the report data the caller requires (its nonce and key binding); `now_unix` is
/// the caller's time in unix seconds. Returns the claims only if the evidence is genuine and
/// acceptable.
pub fn verify(
    evidence: &Evidence,
    policy: &Policy,
    expected: &ReportData,
    now_unix: u64,
) -> Result<Claims, Error> {
    // An invalid policy accepts nothing; say so before doing any work.
    policy.validate()?;
    let claims = verify_evidence(evidence)?;
    appraise(&claims, policy, expected, now_unix)?;
    Ok(claims)
}

/// Like [`verify()`], but with a caller-supplied [`Verifier`] for the cryptography (for example an
/// [`InsecureSimulatedVerifier::with_root`] trusting a private simulated root). The policy checks
/// are the same.
pub fn verify_with(
    verifier: &dyn Verifier,
    evidence: &Evidence,
    policy: &Policy,
    expected: &ReportData,
    now_unix: u64,
) -> Result<Claims, Error> {
    policy.validate()?;
    if evidence.kind() != verifier.kind() {
        return Err(Error::InvalidArgument(
            "the verifier does not handle this kind of evidence",
        ));
    }
    let claims = verifier.verify_evidence(evidence)?;
    if claims.kind != evidence.kind() {
        return Err(Error::InvalidArgument(
            "the verifier returned claims of another kind",
        ));
    }
    appraise(&claims, policy, expected, now_unix)?;
    Ok(claims)
}

/// Cryptographic verification with the built-in verifier for the evidence's kind. Applies no
/// policy: the claims it returns must still be appraised.
///
/// Real hardware kinds are not verified yet and return [`Error::Unsupported`] (after a
/// structural parse where one exists, so malformed input is reported as such).
pub fn verify_evidence(evidence: &Evidence) -> Result<Claims, Error> {
    match evidence {
        Evidence::Simulated { .. } => InsecureSimulatedVerifier::new().verify_evidence(evidence),
        Evidence::SevSnp { report, .. } => {
            crate::snp::SnpReport::parse(report)?;
            Err(Error::Unsupported(TeeKind::SevSnp))
        }
        Evidence::Tdx { quote } => {
            crate::tdx::TdxQuote::parse(quote)?;
            Err(Error::Unsupported(TeeKind::Tdx))
        }
        Evidence::SgxDcap { quote } => {
            crate::sgx::SgxQuote::parse(quote)?;
            Err(Error::Unsupported(TeeKind::SgxDcap))
        }
        Evidence::Nitro { document } => {
            crate::nitro::NitroDocument::parse(document)?;
            Err(Error::Unsupported(TeeKind::Nitro))
        }
    }
}

/// Runs every policy check on already verified claims.
pub fn appraise(
    claims: &Claims,
    policy: &Policy,
    expected: &ReportData,
    now_unix: u64,
) -> Result<(), Error> {
    policy.validate()?;
    check_kind(claims, policy)?;
    check_insecure(claims, policy)?;
    check_debug(claims)?;
    check_identity(claims, policy)?;
    check_tcb(claims, policy)?;
    check_report_data(claims, expected)?;
    check_age(claims, policy, now_unix)?;
    Ok(())
}

/// The policy must list the evidence's kind.
pub fn check_kind(claims: &Claims, policy: &Policy) -> Result<(), Error> {
    if policy.accepts_kind(claims.kind) {
        Ok(())
    } else {
        Err(Error::KindNotAccepted(claims.kind))
    }
}

/// Insecure (simulated) claims need `allow_insecure_simulated`, whatever the kind list says.
pub fn check_insecure(claims: &Claims, policy: &Policy) -> Result<(), Error> {
    let insecure = claims.insecure || claims.kind == TeeKind::InsecureSimulated;
    if insecure && !(policy.allow_insecure_simulated && policy.accepts_kind(claims.kind)) {
        Err(Error::InsecureNotAllowed)
    } else {
        Ok(())
    }
}

/// Debug mode is never accepted.
pub fn check_debug(claims: &Claims) -> Result<(), Error> {
    if claims.debug {
        Err(Error::DebugEnabled)
    } else {
        Ok(())
    }
}

/// The measurement must be in the set, or the signer (and product id) must match with a high
/// enough SVN.
pub fn check_identity(claims: &Claims, policy: &Policy) -> Result<(), Error> {
    match &policy.identity {
        Identity::Measurements(set) => {
            if set.contains(&claims.measurement) {
                Ok(())
            } else {
                Err(Error::MeasurementNotAllowed {
                    measurement: claims.measurement.clone(),
                })
            }
        }
        Identity::Signer(sp) => {
            let signer_ok = claims.signer.as_ref() == Some(&sp.id);
            let product_ok = match sp.product_id {
                None => true,
                Some(p) => claims.product_id == Some(p),
            };
            if !(signer_ok && product_ok) {
                return Err(Error::SignerNotAllowed {
                    signer: claims.signer.clone(),
                    product_id: claims.product_id,
                });
            }
            if claims.svn < sp.min_svn {
                return Err(Error::SvnTooLow {
                    svn: claims.svn,
                    min: sp.min_svn,
                });
            }
            Ok(())
        }
    }
}

/// The TCB must meet the policy's floor for this kind, component by component.
pub fn check_tcb(claims: &Claims, policy: &Policy) -> Result<(), Error> {
    match policy.min_tcb.get(&claims.kind) {
        Some(min) if !claims.tcb.meets(min) => Err(Error::TcbTooLow {
            tcb: claims.tcb.clone(),
            min: min.clone(),
        }),
        _ => Ok(()),
    }
}

/// The report data must equal `expected` exactly (compared in constant time).
pub fn check_report_data(claims: &Claims, expected: &ReportData) -> Result<(), Error> {
    if claims.report_data.ct_eq(expected) {
        Ok(())
    } else {
        Err(Error::UserDataMismatch)
    }
}

/// Evidence with a timestamp must not come from the future (beyond [`MAX_CLOCK_SKEW_SECS`]) and
/// must not be older than the policy's maximum age. Kinds without timestamps pass: their
/// freshness rests on the report data alone.
pub fn check_age(claims: &Claims, policy: &Policy, now_unix: u64) -> Result<(), Error> {
    let Some(issued_at) = claims.issued_at else {
        if policy.max_evidence_age_secs.is_some() && claims.kind.has_timestamp() {
            return Err(Error::MissingTimestamp);
        }
        return Ok(());
    };
    if issued_at > now_unix.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(Error::IssuedInFuture {
            issued_at,
            now: now_unix,
        });
    }
    if let Some(max_age_secs) = policy.max_evidence_age_secs
        && now_unix.saturating_sub(issued_at) > max_age_secs
    {
        return Err(Error::Expired {
            issued_at,
            now: now_unix,
            max_age_secs,
        });
    }
    Ok(())
}
