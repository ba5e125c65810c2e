//! Intel DCAP quotes (TDX and SGX) through `dcap-qvl` 0.7, RustCrypto backend only.
//!
//! dcap-qvl checks the quote signature, the QE report and its binding to the attestation key,
//! the PCK chain to the Intel SGX Root CA built into dcap-qvl (byte-identical to ours:
//! [`INTEL_SGX_ROOT_CA_SHA256`], checked by a test), the CRLs, the TCB info and QE identity
//! signatures and their validity at `now`, and computes the TCB status. We call it with the
//! configuration pinned to `RustCryptoConfig` (the crate-level `verify` would switch to `ring`
//! as soon as anything in the build enables ring, which our reqwest clients do). We use
//! `QuoteVerifier::new_prod().with_config::<RustCryptoConfig>()` rather than the one-shot
//! `verify::rustcrypto::verify` (same verifier, same root, same backend) because only its
//! claims form exposes the PCK flags (dynamic platform, cached keys, SMT) that our policy gates.
//!
//! dcap-qvl gates nothing else: the TCB status, the PCK flags, debug and the TD attributes are
//! appraised here and in [`crate::verify()`] (see [`crate::DcapPolicy`]).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;
use crate::claims::Claims;
use crate::types::{Measurement, ReportData, SignerId, Tcb, TeeKind};

/// SHA-256 of the DER of the Intel SGX Root CA (`CN=Intel SGX Root CA`, valid to 2049).
pub const INTEL_SGX_ROOT_CA_SHA256: &str =
    "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

/// The built-in Intel SGX Root CA (DER).
pub const INTEL_SGX_ROOT_CA_DER: &[u8] = include_bytes!("../roots/intel_sgx_root_ca.der");

/// TD attributes: TUD bits (debug = bit 0, profiling bits 4..6).
const TD_ATTR_TUD_MASK: u64 = 0xff;
/// TD attributes: SEPT_VE_DISABLE (bit 28), required.
const TD_ATTR_SEPT_VE_DISABLE: u64 = 1 << 28;

/// Intel PCS collateral for one quote. JSON: the field names of Intel's / dcap-qvl's
/// `QuoteCollateralV3`, with CRLs and signatures as hex strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcapCollateral {
    /// PEM chain of the PCK CRL issuer (Platform or Processor CA, then root).
    pub pck_crl_issuer_chain: String,
    /// The root CA CRL (DER).
    #[serde(with = "hex_bytes")]
    pub root_ca_crl: Vec<u8>,
    /// The PCK CRL (DER).
    #[serde(with = "hex_bytes")]
    pub pck_crl: Vec<u8>,
    /// PEM chain of the TCB signing certificate.
    pub tcb_info_issuer_chain: String,
    /// The TCB info JSON body, exactly as signed.
    pub tcb_info: String,
    /// Its signature (64 bytes `r‖s`).
    #[serde(with = "hex_bytes")]
    pub tcb_info_signature: Vec<u8>,
    /// PEM chain of the QE identity signer.
    pub qe_identity_issuer_chain: String,
    /// The QE identity JSON body, exactly as signed.
    pub qe_identity: String,
    /// Its signature (64 bytes `r‖s`).
    #[serde(with = "hex_bytes")]
    pub qe_identity_signature: Vec<u8>,
}

mod hex_bytes {
    use super::*;
    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s.trim()).map_err(serde::de::Error::custom)
    }
}

impl DcapCollateral {
    /// Parses the JSON form.
    pub fn from_json(text: &str) -> Result<DcapCollateral, Error> {
        serde_json::from_str(text).map_err(|_| Error::Malformed {
            what: "DCAP collateral JSON",
            reason: "not the expected JSON object",
        })
    }

    fn to_qvl(&self) -> dcap_qvl::QuoteCollateralV3 {
        dcap_qvl::QuoteCollateralV3 {
            pck_crl_issuer_chain: self.pck_crl_issuer_chain.clone(),
            root_ca_crl: self.root_ca_crl.clone(),
            pck_crl: self.pck_crl.clone(),
            tcb_info_issuer_chain: self.tcb_info_issuer_chain.clone(),
            tcb_info: self.tcb_info.clone(),
            tcb_info_signature: self.tcb_info_signature.clone(),
            qe_identity_issuer_chain: self.qe_identity_issuer_chain.clone(),
            qe_identity: self.qe_identity.clone(),
            qe_identity_signature: self.qe_identity_signature.clone(),
            pck_certificate_chain: None,
        }
    }
}

/// Verifies a TDX (`kind` = [`TeeKind::Tdx`]) or SGX quote with its collateral at `now_unix`
/// and returns its claims (no policy).
pub fn verify_quote(
    kind: TeeKind,
    quote: &[u8],
    collateral: Option<&DcapCollateral>,
    now_unix: u64,
) -> Result<Claims, Error> {
    // Structure first, with our own parsers: malformed input is reported as such.
    let (mut claims, sig_data) = match kind {
        TeeKind::Tdx => {
            let q = crate::tdx::TdxQuote::parse(quote)?;
            (q.claims_unverified(), q.signature_data)
        }
        TeeKind::SgxDcap => {
            let q = crate::sgx::SgxQuote::parse(quote)?;
            (q.claims_unverified(), q.signature_data)
        }
        _ => {
            return Err(Error::InvalidArgument(
                "verify_quote handles tdx and sgx_dcap",
            ));
        }
    };
    let collateral = collateral.ok_or(Error::MissingEndorsement {
        kind,
        what: "DCAP collateral (TCB info, QE identity, CRLs)",
    })?;
    // The signature data length must fit the rest of the quote (dcap-qvl does not check).
    const WHAT: &str = "DCAP quote signature data";
    let declared = sig_data
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or(Error::Truncated { what: WHAT })?;
    let actual = sig_data.len() - 4;
    if declared > actual {
        return Err(Error::Truncated { what: WHAT });
    }
    // Real quotes may come in a zero-padded buffer (the TDX sample here has 70 zero bytes);
    // anything else after the signature data is refused.
    if declared < actual && sig_data[4 + declared..].iter().any(|&b| b != 0) {
        return Err(Error::TrailingBytes {
            what: WHAT,
            count: actual - declared,
        });
    }
    let verifier = dcap_qvl::verify::QuoteVerifier::new(INTEL_SGX_ROOT_CA_DER.to_vec())
        .allow_debug(true) // so that debug is reported by our check, after the cryptography
        .with_config::<dcap_qvl::configs::RustCryptoConfig>();
    let qc = verifier
        .verify_with_policy(
            quote,
            collateral.to_qvl(),
            now_unix,
            // Appraisal is ours (crate::verify::check_platform): dcap-qvl only verifies.
            &dcap_qvl::QuotePolicy::claims_only(now_unix),
        )
        .map_err(|e| Error::QuoteVerification {
            kind,
            reason: format!("{e:#}"),
        })?;
    fill_from_verified(kind, &mut claims, &qc)?;
    Ok(claims)
}

fn flag_set(f: dcap_qvl::PckCertFlag) -> bool {
    f == dcap_qvl::PckCertFlag::True
}

fn fill_from_verified(
    kind: TeeKind,
    claims: &mut Claims,
    qc: &dcap_qvl::QuoteClaims,
) -> Result<(), Error> {
    use dcap_qvl::quote::Report;
    let p = &mut claims.platform;
    p.tcb_status = Some(qc.tcb.status.to_string());
    p.advisory_ids = qc.tcb.advisory_ids.clone();
    let pck = &qc.platform.pck;
    for (name, f) in [
        ("dynamic_platform", pck.dynamic_platform),
        ("cached_keys", pck.cached_keys),
        ("smt_enabled", pck.smt_enabled),
    ] {
        if flag_set(f) {
            p.platform_flags.push(name.into());
        }
    }
    // The claims come from the verified report, not from our unverified parse.
    match (&qc.report, kind) {
        (Report::SgxEnclave(r), TeeKind::SgxDcap) => {
            let mut tcb: Vec<u16> = r.cpu_svn.iter().map(|&c| c.into()).collect();
            tcb.push(pck.pce_svn);
            claims.measurement = Measurement(r.mr_enclave.to_vec());
            claims.signer = Some(SignerId(r.mr_signer.to_vec()));
            claims.product_id = Some(r.isv_prod_id);
            claims.svn = r.isv_svn.into();
            claims.tcb = Tcb(tcb);
            claims.debug = r.attributes[0] & 0x02 != 0;
            claims.report_data = ReportData(r.report_data);
        }
        (Report::TD10(_) | Report::TD15(_) | Report::TD15Ex(_), TeeKind::Tdx) => {
            let td = qc.report.as_td10().ok_or(Error::Malformed {
                what: "TDX quote",
                reason: "no TD report body",
            })?;
            let attrs = u64::from_le_bytes(td.td_attributes);
            claims.measurement = Measurement(td.mr_td.to_vec());
            claims.tcb = Tcb(td.tee_tcb_svn.iter().map(|&c| c.into()).collect());
            claims.debug = attrs & 1 != 0;
            claims.report_data = ReportData(td.report_data);
            let regs = &mut claims.platform.registers;
            regs.insert("rtmr0".into(), Measurement(td.rt_mr0.to_vec()));
            regs.insert("rtmr1".into(), Measurement(td.rt_mr1.to_vec()));
            regs.insert("rtmr2".into(), Measurement(td.rt_mr2.to_vec()));
            regs.insert("rtmr3".into(), Measurement(td.rt_mr3.to_vec()));
            regs.insert("mr_config_id".into(), Measurement(td.mr_config_id.to_vec()));
            regs.insert("mr_owner".into(), Measurement(td.mr_owner.to_vec()));
            regs.insert(
                "mr_owner_config".into(),
                Measurement(td.mr_owner_config.to_vec()),
            );
            regs.insert("mr_seam".into(), Measurement(td.mr_seam.to_vec()));
            claims.platform.td_attributes = Some(attrs);
            check_td_attributes(attrs)?;
        }
        _ => {
            return Err(Error::Malformed {
                what: "DCAP quote",
                reason: "report type does not match the evidence kind",
            });
        }
    }
    Ok(())
}

/// The Intel CA that issued a quote's PCK certificate; it selects the PCK CRL to fetch
/// (Intel PCS `pckcrl?ca=platform|processor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PckCa {
    /// `CN=Intel SGX PCK Platform CA` (multi-package platforms, most cloud hosts).
    Platform,
    /// `CN=Intel SGX PCK Processor CA`.
    Processor,
}

impl PckCa {
    /// The value of Intel PCS's `ca` query parameter (`platform` or `processor`).
    pub fn as_str(self) -> &'static str {
        match self {
            PckCa::Platform => "platform",
            PckCa::Processor => "processor",
        }
    }
}

/// What Intel PCS collateral a DCAP quote needs, read from the quote's embedded PCK
/// certificate.
///
/// **Unverified**: these values only say what to fetch; the fetched collateral is checked by
/// [`verify_quote`] like any other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CollateralRequest {
    /// [`TeeKind::Tdx`] or [`TeeKind::SgxDcap`] (selects the `/tdx/` or `/sgx/` PCS paths).
    pub kind: TeeKind,
    /// The platform's FMSPC (family-model-stepping-platform-custom SKU), 6 bytes.
    pub fmspc: [u8; 6],
    /// The CA that issued the PCK certificate.
    pub ca: PckCa,
}

/// Reads the FMSPC and PCK issuing CA from a TDX or SGX quote's PCK certificate chain, to know
/// which collateral to fetch. Checks no signature (see [`CollateralRequest`]).
pub fn collateral_request(quote: &[u8]) -> Result<CollateralRequest, Error> {
    use dcap_qvl::configs::RustCryptoConfig;
    let q = dcap_qvl::quote::Quote::parse(quote).map_err(|_| Error::Malformed {
        what: "DCAP quote",
        reason: "does not parse",
    })?;
    let kind = if q.header.is_sgx() {
        TeeKind::SgxDcap
    } else {
        TeeKind::Tdx
    };
    let no_pck = |_| Error::Malformed {
        what: "DCAP quote PCK certificate",
        reason: "missing or without the Intel SGX extension",
    };
    let fmspc = dcap_qvl::intel::quote_fmspc_with::<RustCryptoConfig>(&q).map_err(no_pck)?;
    let ca = match dcap_qvl::intel::quote_ca_with::<RustCryptoConfig>(&q).map_err(no_pck)? {
        dcap_qvl::config::PckCa::Platform => PckCa::Platform,
        dcap_qvl::config::PckCa::Processor => PckCa::Processor,
    };
    Ok(CollateralRequest { kind, fmspc, ca })
}

/// TD attributes: debug (bit 0) is reported as `debug` and refused by policy; any other TUD bit
/// (profiling) is refused here, and SEPT_VE_DISABLE must be set.
pub fn check_td_attributes(attributes: u64) -> Result<(), Error> {
    if attributes & TD_ATTR_TUD_MASK & !1 != 0 {
        return Err(Error::TdAttributesNotAllowed {
            attributes,
            reason: "a TUD (debug/profiling) bit is set",
        });
    }
    if attributes & TD_ATTR_SEPT_VE_DISABLE == 0 {
        return Err(Error::TdAttributesNotAllowed {
            attributes,
            reason: "SEPT_VE_DISABLE is not set",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_root_is_dcap_qvls_and_pinned() {
        assert_eq!(
            hex::encode(crate::pki::fingerprint(INTEL_SGX_ROOT_CA_DER)),
            INTEL_SGX_ROOT_CA_SHA256
        );
    }

    #[test]
    fn collateral_request_reads_fmspc_and_ca_of_real_quotes() {
        fn unhex(t: &str) -> Vec<u8> {
            let t: String = t.chars().filter(|c| !c.is_whitespace()).collect();
            hex::decode(t).expect("hex")
        }
        let tdx = unhex(include_str!("../tests/data/real/tdx/tdx_quote_v4.hex"));
        let r = collateral_request(&tdx).expect("tdx");
        assert_eq!(r.kind, TeeKind::Tdx);
        assert_eq!(hex::encode(r.fmspc), "20a06f000000");
        assert_eq!(r.ca, PckCa::Platform);
        let sgx = unhex(include_str!("../tests/data/real/sgx/sgx_quote_v3.hex"));
        let r = collateral_request(&sgx).expect("sgx");
        assert_eq!(r.kind, TeeKind::SgxDcap);
        assert_eq!(hex::encode(r.fmspc), "00606a000000");
        assert_eq!(r.ca.as_str(), "platform");
        for bad in [&tdx[..600], &b"garbage"[..]] {
            let r = collateral_request(bad);
            assert!(
                matches!(
                    r,
                    Err(Error::Malformed {
                        what: "DCAP quote",
                        reason: "does not parse"
                    })
                ),
                "{r:?}"
            );
        }
    }

    #[test]
    fn td_attribute_rules() {
        assert!(check_td_attributes(TD_ATTR_SEPT_VE_DISABLE).is_ok());
        assert!(check_td_attributes(TD_ATTR_SEPT_VE_DISABLE | 1).is_ok()); // debug: policy refuses
        assert!(matches!(
            check_td_attributes(0),
            Err(Error::TdAttributesNotAllowed { .. })
        ));
        assert!(matches!(
            check_td_attributes(TD_ATTR_SEPT_VE_DISABLE | 0x10),
            Err(Error::TdAttributesNotAllowed { .. })
        ));
    }
}
