//! The verifier role (RATS): cryptographic verification, then appraisal against a policy.
//!
//! [`verify()`] runs [`verify_evidence`] (signature / certificate chain per kind, yielding
//! [`Claims`]) and then [`appraise`], which runs the separate policy checks in a fixed order:
//! [`check_kind`], [`check_insecure`], [`check_debug`], [`check_identity`], [`check_tcb`],
//! [`check_platform`], [`check_registers`], [`check_report_data`], [`check_age`]. Each check
//! has its own error variant.
//!
//! Endorsements (certificates and collateral that do not travel inside the evidence) are passed
//! in with [`verify_with_endorsements`]; [`verify()`] works whenever the evidence carries what it
//! needs (Nitro always; SEV-SNP when its certificate table holds the VCEK). This crate never
//! fetches anything: `clave-collateral` does.

use crate::Error;
use crate::claims::Claims;
use crate::evidence::Evidence;
use crate::policy::{Identity, Policy, Revocation};
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

/// Certificates and collateral that real evidence is verified against, supplied by the caller
/// (fetched and cached by `clave-collateral`, or read from files). All fields are optional;
/// what a kind needs and does not find here or in the evidence is a
/// [`Error::MissingEndorsement`]. Roots are never taken from here: they are built in and pinned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endorsements {
    /// SEV-SNP: the VCEK certificate (DER or PEM), e.g. from AMD KDS
    /// `/vcek/v1/{product}/{chip_id}?blSPL=..`. Overrides a VCEK in the evidence's table.
    pub snp_vcek: Option<Vec<u8>>,
    /// SEV-SNP: AMD's `cert_chain` (PEM, ASK then ARK) or the ASK alone. Optional: the built-in
    /// ASK is used otherwise; a supplied ARK must equal the pinned one.
    pub snp_chain: Option<Vec<u8>>,
    /// TDX / SGX: Intel PCS collateral (TCB info, QE identity, CRLs and their chains).
    pub dcap: Option<crate::dcap::DcapCollateral>,
    /// SEV-SNP: AMD's CRL for the product (DER or PEM), from AMD KDS
    /// `/vcek/v1/{product}/crl`. When present it is checked in full (signed by the pinned ARK,
    /// valid at `now`, the chain's ASK and VCEK not listed; see [`crate::snp::crl`]); when absent,
    /// [`crate::SnpPolicy::revocation`] decides.
    pub snp_crl: Option<Vec<u8>>,
}

/// Like [`verify()`], with caller-supplied endorsements.
pub fn verify_with_endorsements(
    evidence: &Evidence,
    endorsements: &Endorsements,
    policy: &Policy,
    expected: &ReportData,
    now_unix: u64,
) -> Result<Claims, Error> {
    policy.validate()?;
    let claims = verify_evidence_with(evidence, endorsements, now_unix)?;
    appraise(&claims, policy, expected, now_unix)?;
    Ok(claims)
}

/// Cryptographic verification with endorsements at `now_unix` (certificate and collateral
/// validity are checked at that time). Applies no policy.
pub fn verify_evidence_with(
    evidence: &Evidence,
    endorsements: &Endorsements,
    now_unix: u64,
) -> Result<Claims, Error> {
    match evidence {
        Evidence::Simulated { .. } => InsecureSimulatedVerifier::new().verify_evidence(evidence),
        Evidence::SevSnp { report, certs } => {
            let table = match certs {
                Some(c) if !c.is_empty() => crate::snp::CertTable::parse(c)?,
                _ => crate::snp::CertTable::default(),
            };
            let vcek = endorsements.snp_vcek.as_deref().or(table.vcek.as_deref());
            let Some(vcek) = vcek else {
                // Report errors first: malformed input is reported as such.
                crate::snp::SnpReport::parse(report)?;
                return Err(Error::MissingEndorsement {
                    kind: TeeKind::SevSnp,
                    what: "VCEK certificate",
                });
            };
            let chain = endorsements.snp_chain.as_deref().or(table.ask.as_deref());
            crate::snp::verify_report_parts(
                report,
                vcek,
                table.ark.as_deref(),
                chain,
                endorsements.snp_crl.as_deref(),
                now_unix,
            )
        }
        Evidence::Tdx { quote } => {
            crate::dcap::verify_quote(TeeKind::Tdx, quote, endorsements.dcap.as_ref(), now_unix)
        }
        Evidence::SgxDcap { quote } => crate::dcap::verify_quote(
            TeeKind::SgxDcap,
            quote,
            endorsements.dcap.as_ref(),
            now_unix,
        ),
        Evidence::Nitro { document } => crate::nitro::verify_document(document, now_unix),
    }
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
    verify_with_endorsements(
        evidence,
        &Endorsements::default(),
        policy,
        expected,
        now_unix,
    )
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

/// Cryptographic verification with the built-in verifier for the evidence's kind, without
/// endorsements and without a time. Applies no policy.
///
/// Only the simulated kind can be verified this way: real hardware evidence needs the
/// verification time (certificate validity), so it is parsed (malformed input is reported as
/// such) and then refused with [`Error::Unsupported`]; use [`verify_evidence_with`].
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
    check_platform(claims, policy)?;
    check_registers(claims, policy)?;
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

/// Kind-specific platform settings: SEV-SNP VMPL at most `snp.max_vmpl` and, under
/// `snp.revocation: required`, a chain checked against AMD's CRL; DCAP TCB status in
/// `dcap.accepted_tcb_statuses` and the PCK platform flags allowed by `dcap`.
pub fn check_platform(claims: &Claims, policy: &Policy) -> Result<(), Error> {
    let p = &claims.platform;
    if claims.kind == TeeKind::SevSnp {
        let vmpl = p.vmpl.unwrap_or(u32::MAX);
        if vmpl > policy.snp.max_vmpl {
            return Err(Error::VmplNotAllowed {
                vmpl,
                max: policy.snp.max_vmpl,
            });
        }
        if policy.snp.revocation == Revocation::Required && p.crl.is_none() {
            return Err(Error::RevocationNotChecked(claims.kind));
        }
    }
    if matches!(claims.kind, TeeKind::Tdx | TeeKind::SgxDcap) {
        let accepted = &policy.dcap.accepted_tcb_statuses;
        let status = p.tcb_status.clone().unwrap_or_else(|| "missing".into());
        if !accepted.iter().any(|a| a.as_str() == status) {
            return Err(Error::TcbStatusNotAccepted {
                kind: claims.kind,
                status,
                accepted: accepted
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            });
        }
        let flags = [
            ("dynamic_platform", policy.dcap.allow_dynamic_platform),
            ("cached_keys", policy.dcap.allow_cached_keys),
            ("smt_enabled", policy.dcap.allow_smt),
        ];
        for (flag, allowed) in flags {
            if !allowed && p.platform_flags.iter().any(|f| f == flag) {
                return Err(Error::PlatformFlagNotAllowed {
                    kind: claims.kind,
                    flag,
                });
            }
        }
    }
    Ok(())
}

/// Every register the policy names for this kind must be present with exactly that value.
pub fn check_registers(claims: &Claims, policy: &Policy) -> Result<(), Error> {
    let Some(wanted) = policy.registers.get(&claims.kind) else {
        return Ok(());
    };
    for (name, value) in wanted {
        let actual = claims.platform.registers.get(name);
        if actual != Some(value) {
            return Err(Error::RegisterMismatch {
                kind: claims.kind,
                register: name.clone(),
                expected: value.to_hex(),
                actual: actual.map_or_else(|| "missing".into(), |a| a.to_hex()),
            });
        }
    }
    Ok(())
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
