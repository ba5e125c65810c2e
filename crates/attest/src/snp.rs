//! AMD SEV-SNP attestation reports: parsing and verification.
//!
//! Layout from the SEV-SNP firmware ABI specification ("ATTESTATION_REPORT structure"), 0x4A0
//! bytes, little-endian. [`verify_report`] checks, each with its own error:
//!
//! 1. the report parses (version 2 to 5, signature algorithm 1 = ECDSA P-384/SHA-384, VMPL ≤ 3)
//!    and is signed by a VCEK (`SIGNING_KEY` = 0; VLEK-signed reports are not supported);
//! 2. the signature field: `R` and `S` are 72-byte little-endian fields whose top 24 bytes must
//!    be zero, the 368 reserved bytes after them must be zero, and `R`, `S` must be in
//!    `1..n`; the signature is checked **by us** with `p384` over the raw bytes `0x000..0x2A0`
//!    (the `sev` crate re-encodes the report and reads only the low 48 bytes of `R`/`S`);
//! 3. VCEK → ASK → ARK (RSA-PSS/SHA-384, through `sev`'s `Verifiable`), where the ARK is the
//!    built-in one of the product (Milan, Genoa, Turin) pinned by SHA-256 fingerprint: an ARK
//!    supplied by the host must be byte-identical to it; the ASK is the host's (if given) or the
//!    built-in one;
//! 4. ARK, ASK and VCEK are valid at `now`; if AMD's CRL was supplied
//!    ([`crate::Endorsements::snp_crl`], [`verify_report_with_crl`]), it is signed by the pinned
//!    ARK, valid at `now`, and lists neither the ASK nor the VCEK ([`crl`]);
//! 5. the VCEK's extensions match the report: `hwID` = `CHIP_ID` (Turin: its first 8 bytes),
//!    and the boot loader, TEE, SNP, microcode (and Turin FMC) SPLs = `REPORTED_TCB`. A report
//!    with a masked chip id (`MASK_CHIP_ID`, all zeros) cannot be bound to its VCEK and is
//!    refused with [`Error::ChipIdMasked`].
//!
//! The ECDSA check of step 2 runs last, so a corrupted `CHIP_ID` or `REPORTED_TCB` is reported
//! as an endorsement mismatch and any other flip as [`Error::BadSignature`].
//!
//! Policy ([`crate::verify()`]) then checks debug (guest policy bit 19), VMPL
//! ([`crate::SnpPolicy::max_vmpl`]), minimum TCB, measurement or ID/author key digest + guest
//! SVN, named registers (`host_data`, `family_id`, `image_id`, `id_key_digest`,
//! `author_key_digest`) and report data.

pub mod crl;

use crate::Error;
use crate::claims::Claims;
use crate::types::{Measurement, ReportData, SignerId, Tcb, TeeKind};

/// Size of an SNP attestation report.
pub const SNP_REPORT_LEN: usize = 0x4A0;
/// Offset of the signed part's end / the signature.
pub const SNP_SIGNATURE_OFFSET: usize = 0x2A0;
/// Guest policy bit: debugging allowed.
pub const SNP_POLICY_DEBUG_BIT: u64 = 1 << 19;

const OFF_VERSION: usize = 0x00;
const OFF_GUEST_SVN: usize = 0x04;
const OFF_POLICY: usize = 0x08;
const OFF_FAMILY_ID: usize = 0x10;
const OFF_IMAGE_ID: usize = 0x20;
const OFF_VMPL: usize = 0x30;
const OFF_SIG_ALGO: usize = 0x34;
const OFF_CURRENT_TCB: usize = 0x38;
const OFF_KEY_INFO: usize = 0x48;
const OFF_REPORT_DATA: usize = 0x50;
const OFF_MEASUREMENT: usize = 0x90;
const OFF_HOST_DATA: usize = 0xC0;
const OFF_ID_KEY_DIGEST: usize = 0xE0;
const OFF_AUTHOR_KEY_DIGEST: usize = 0x110;
const OFF_REPORTED_TCB: usize = 0x180;
const OFF_CHIP_ID: usize = 0x1A0;
/// `KEY_INFO` bits 2..4: which key signed the report (0 VCEK, 1 VLEK, 7 none).
const KEY_INFO_SIGNING_KEY_SHIFT: u32 = 2;

/// Signature algorithm 1: ECDSA P-384 with SHA-384 (the only one defined).
const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;

/// The fields of an SNP attestation report that matter for appraisal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpReport {
    /// Report format version (2 to 5).
    pub version: u32,
    /// The guest's security version (from its ID block).
    pub guest_svn: u32,
    /// The guest policy (bit 19: debug allowed).
    pub policy: u64,
    /// Family id from the ID block.
    pub family_id: [u8; 16],
    /// Image id from the ID block.
    pub image_id: [u8; 16],
    /// The VMPL that requested the report (0 to 3).
    pub vmpl: u32,
    /// The current platform TCB version.
    pub current_tcb: SnpTcb,
    /// The reported TCB version (the one the VCEK is derived for).
    pub reported_tcb: SnpTcb,
    /// Whether the author key digest is present (else the ID key digest identifies the signer).
    pub author_key_en: bool,
    /// The guest-chosen report data.
    pub report_data: ReportData,
    /// The launch measurement (48 bytes).
    pub measurement: [u8; 48],
    /// Host-provided data.
    pub host_data: [u8; 32],
    /// SHA-384 of the ID key that signed the ID block.
    pub id_key_digest: [u8; 48],
    /// SHA-384 of the author key that certified the ID key.
    pub author_key_digest: [u8; 48],
    /// The chip id (selects the VCEK; all zeros when masked).
    pub chip_id: [u8; 64],
    /// Which key signed the report (`KEY_INFO[4:2]`: 0 VCEK, 1 VLEK, 7 none).
    pub signing_key: u32,
    /// The signed bytes (`report[..0x2A0]`).
    pub signed: Vec<u8>,
    /// The raw signature field (`report[0x2A0..0x4A0]`: R and S, little-endian, zero-padded).
    pub signature: Vec<u8>,
}

/// An SNP TCB version (Milan/Genoa layout: boot loader, TEE, SNP, microcode SVNs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnpTcb(pub u64);

impl SnpTcb {
    /// The components `[boot_loader, tee, snp, microcode]` as a generic [`Tcb`].
    pub fn to_tcb(self) -> Tcb {
        let b = self.0.to_le_bytes();
        Tcb(vec![b[0].into(), b[1].into(), b[6].into(), b[7].into()])
    }
}

fn u32_le(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

fn u64_le(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

fn arr<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[off..off + N]);
    a
}

impl SnpReport {
    /// Parses a raw report. Checks length, version, signature algorithm and VMPL range.
    pub fn parse(bytes: &[u8]) -> Result<SnpReport, Error> {
        const WHAT: &str = "SEV-SNP report";
        if bytes.len() < SNP_REPORT_LEN {
            return Err(Error::Truncated { what: WHAT });
        }
        if bytes.len() > SNP_REPORT_LEN {
            return Err(Error::TrailingBytes {
                what: WHAT,
                count: bytes.len() - SNP_REPORT_LEN,
            });
        }
        // From here on every offset is inside the fixed-size buffer.
        let version = u32_le(bytes, OFF_VERSION);
        if !(2..=5).contains(&version) {
            return Err(Error::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        if u32_le(bytes, OFF_SIG_ALGO) != SIG_ALGO_ECDSA_P384_SHA384 {
            return Err(Error::Malformed {
                what: WHAT,
                reason: "unknown signature algorithm",
            });
        }
        let vmpl = u32_le(bytes, OFF_VMPL);
        if vmpl > 3 {
            return Err(Error::Malformed {
                what: WHAT,
                reason: "VMPL above 3",
            });
        }
        Ok(SnpReport {
            version,
            guest_svn: u32_le(bytes, OFF_GUEST_SVN),
            policy: u64_le(bytes, OFF_POLICY),
            family_id: arr(bytes, OFF_FAMILY_ID),
            image_id: arr(bytes, OFF_IMAGE_ID),
            vmpl,
            current_tcb: SnpTcb(u64_le(bytes, OFF_CURRENT_TCB)),
            reported_tcb: SnpTcb(u64_le(bytes, OFF_REPORTED_TCB)),
            author_key_en: u32_le(bytes, OFF_KEY_INFO) & 1 == 1,
            signing_key: (u32_le(bytes, OFF_KEY_INFO) >> KEY_INFO_SIGNING_KEY_SHIFT) & 7,
            report_data: ReportData(arr(bytes, OFF_REPORT_DATA)),
            measurement: arr(bytes, OFF_MEASUREMENT),
            host_data: arr(bytes, OFF_HOST_DATA),
            id_key_digest: arr(bytes, OFF_ID_KEY_DIGEST),
            author_key_digest: arr(bytes, OFF_AUTHOR_KEY_DIGEST),
            chip_id: arr(bytes, OFF_CHIP_ID),
            signed: bytes[..SNP_SIGNATURE_OFFSET].to_vec(),
            signature: bytes[SNP_SIGNATURE_OFFSET..].to_vec(),
        })
    }

    /// Whether the guest policy allows debugging.
    pub fn debug(&self) -> bool {
        self.policy & SNP_POLICY_DEBUG_BIT != 0
    }

    /// The claims the report makes. **Unverified**: nothing here checks the signature; use
    /// [`crate::verify()`] for decisions.
    pub fn claims_unverified(&self) -> Claims {
        let signer = if self.author_key_en {
            Some(self.author_key_digest)
        } else if self.id_key_digest != [0; 48] {
            Some(self.id_key_digest)
        } else {
            None
        };
        Claims {
            kind: TeeKind::SevSnp,
            measurement: Measurement(self.measurement.to_vec()),
            signer: signer.map(|s| SignerId(s.to_vec())),
            product_id: None,
            svn: self.guest_svn,
            tcb: self.reported_tcb.to_tcb(),
            debug: self.debug(),
            report_data: self.report_data,
            issued_at: None,
            insecure: false,
            platform: Default::default(),
        }
    }
}

/// An AMD EPYC product generation with SEV-SNP, each with its own pinned ARK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnpProduct {
    /// 3rd generation EPYC (7003).
    Milan,
    /// 4th generation EPYC (9004).
    Genoa,
    /// 5th generation EPYC (9005).
    Turin,
}

impl SnpProduct {
    /// Every product.
    pub const ALL: [SnpProduct; 3] = [SnpProduct::Milan, SnpProduct::Genoa, SnpProduct::Turin];

    /// The name AMD's KDS uses (`Milan`, `Genoa`, `Turin`).
    pub fn name(self) -> &'static str {
        match self {
            SnpProduct::Milan => "Milan",
            SnpProduct::Genoa => "Genoa",
            SnpProduct::Turin => "Turin",
        }
    }

    /// The built-in ARK (DER), as published by AMD's KDS.
    pub fn ark_der(self) -> &'static [u8] {
        match self {
            SnpProduct::Milan => include_bytes!("../roots/amd_milan_ark.der"),
            SnpProduct::Genoa => include_bytes!("../roots/amd_genoa_ark.der"),
            SnpProduct::Turin => include_bytes!("../roots/amd_turin_ark.der"),
        }
    }

    /// The built-in ASK (DER), as published by AMD's KDS.
    pub fn ask_der(self) -> &'static [u8] {
        match self {
            SnpProduct::Milan => include_bytes!("../roots/amd_milan_ask.der"),
            SnpProduct::Genoa => include_bytes!("../roots/amd_genoa_ask.der"),
            SnpProduct::Turin => include_bytes!("../roots/amd_turin_ask.der"),
        }
    }

    /// SHA-256 of the ARK's DER: the pin.
    pub fn ark_sha256(self) -> &'static str {
        match self {
            SnpProduct::Milan => "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
            SnpProduct::Genoa => "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
            SnpProduct::Turin => "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
        }
    }

    /// The TCB components `[boot_loader, tee, snp, microcode]` of a raw TCB_VERSION, in this
    /// product's layout (Turin moved the fields and added FMC at byte 0).
    pub fn tcb_components(self, tcb: SnpTcb) -> [u8; 4] {
        let b = tcb.0.to_le_bytes();
        match self {
            SnpProduct::Milan | SnpProduct::Genoa => [b[0], b[1], b[6], b[7]],
            SnpProduct::Turin => [b[1], b[2], b[3], b[7]],
        }
    }
}

/// GUIDs of the host certificate table (SNP GHCB / configfs-tsm `auxblob`), in table byte order.
const GUID_VCEK: [u8; 16] = [
    0x8d, 0x75, 0xda, 0x63, 0x64, 0xe6, 0x64, 0x45, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd,
];
const GUID_ASK: [u8; 16] = [
    0x79, 0xb3, 0xb7, 0x4a, 0xac, 0xbb, 0xe4, 0x4f, 0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82,
];
const GUID_ARK: [u8; 16] = [
    0xa4, 0x06, 0xb4, 0xc0, 0x03, 0xa8, 0x52, 0x49, 0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae,
];

/// The certificates found in a host certificate table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertTable {
    /// The VCEK (DER), if present.
    pub vcek: Option<Vec<u8>>,
    /// The ASK (DER), if present.
    pub ask: Option<Vec<u8>>,
    /// The ARK (DER), if present.
    pub ark: Option<Vec<u8>>,
}

impl CertTable {
    /// Parses a GUID-keyed certificate table: entries of `GUID (16) ‖ offset (u32 LE) ‖ length
    /// (u32 LE)` ended by an all-zero entry, offsets relative to the table start. Unknown GUIDs
    /// are skipped; duplicates and out-of-bounds entries are errors.
    pub fn parse(bytes: &[u8]) -> Result<CertTable, Error> {
        const WHAT: &str = "SEV-SNP certificate table";
        let mut t = CertTable::default();
        let mut pos = 0usize;
        for _ in 0..64 {
            let entry = bytes
                .get(pos..pos + 24)
                .ok_or(Error::Truncated { what: WHAT })?;
            pos += 24;
            if entry.iter().all(|&b| b == 0) {
                return Ok(t);
            }
            let off = u32_le(entry, 16) as usize;
            let len = u32_le(entry, 20) as usize;
            let data = off
                .checked_add(len)
                .and_then(|end| bytes.get(off..end))
                .ok_or(Error::Malformed {
                    what: WHAT,
                    reason: "entry points outside the table",
                })?;
            let slot = if entry[..16] == GUID_VCEK {
                &mut t.vcek
            } else if entry[..16] == GUID_ASK {
                &mut t.ask
            } else if entry[..16] == GUID_ARK {
                &mut t.ark
            } else {
                continue;
            };
            if slot.is_some() {
                return Err(Error::Malformed {
                    what: WHAT,
                    reason: "duplicate entry",
                });
            }
            *slot = Some(data.to_vec());
        }
        Err(Error::Malformed {
            what: WHAT,
            reason: "more than 64 entries",
        })
    }
}

/// AMD VCEK extension OIDs (1.3.6.1.4.1.3704.1.*).
mod oid {
    use der::asn1::ObjectIdentifier as O;
    pub(super) const BL_SPL: O = O::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
    pub(super) const TEE_SPL: O = O::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
    pub(super) const SNP_SPL: O = O::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
    pub(super) const UCODE_SPL: O = O::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
    pub(super) const FMC_SPL: O = O::new_unwrap("1.3.6.1.4.1.3704.1.3.9");
    pub(super) const HW_ID: O = O::new_unwrap("1.3.6.1.4.1.3704.1.4");
}

fn sev_cert(c: &crate::pki::Cert) -> Result<sev::certs::snp::Certificate, Error> {
    // sev is on the older RustCrypto generation: hand it DER, never our types.
    sev::certs::snp::Certificate::from_der(&c.der).map_err(|_| Error::BadCertificate {
        kind: TeeKind::SevSnp,
        which: c.name.clone(),
        reason: "rejected by the sev crate's parser",
    })
}

fn sev_verify(
    signer: &sev::certs::snp::Certificate,
    signee: &sev::certs::snp::Certificate,
    which: &crate::pki::Cert,
) -> Result<(), Error> {
    use sev::certs::snp::Verifiable as _;
    (signer, signee)
        .verify()
        .map_err(|_| Error::BadCertificateSignature {
            kind: TeeKind::SevSnp,
            which: which.name.clone(),
        })
}

/// Reads an SPL extension (a DER INTEGER 0..=255).
fn spl(vcek: &crate::pki::Cert, oid: &der::asn1::ObjectIdentifier) -> Result<u8, Error> {
    use der::Decode as _;
    let raw = vcek.extension(oid).ok_or(Error::EndorsementMismatch {
        kind: TeeKind::SevSnp,
        what: "VCEK lacks a TCB (SPL) extension",
    })?;
    u8::from_der(raw).map_err(|_| Error::BadCertificate {
        kind: TeeKind::SevSnp,
        which: vcek.name.clone(),
        reason: "SPL extension is not an INTEGER 0..=255",
    })
}

/// Verifies an SEV-SNP report against its VCEK at `now_unix` and returns its claims (no
/// policy). `vcek` is DER or PEM; `chain` (optional) is AMD's `cert_chain` PEM (ASK then ARK) or
/// an ASK alone; without it the built-in ASK is used. See the module docs for every check.
pub fn verify_report(
    report: &[u8],
    vcek: &[u8],
    chain: Option<&[u8]>,
    now_unix: u64,
) -> Result<Claims, Error> {
    verify_report_parts(report, vcek, None, chain, None, now_unix)
}

/// Like [`verify_report`], and checks the chain against AMD's CRL for the product (DER or
/// PEM; see [`crl`]). The claims then carry the CRL's window in `platform.crl`.
pub fn verify_report_with_crl(
    report: &[u8],
    vcek: &[u8],
    chain: Option<&[u8]>,
    crl: &[u8],
    now_unix: u64,
) -> Result<Claims, Error> {
    verify_report_parts(report, vcek, None, chain, Some(crl), now_unix)
}

pub(crate) fn verify_report_parts(
    report: &[u8],
    vcek: &[u8],
    table_ark: Option<&[u8]>,
    chain: Option<&[u8]>,
    crl: Option<&[u8]>,
    now_unix: u64,
) -> Result<Claims, Error> {
    use crate::pki::{Cert, cert_from_pem_or_der, certs_from_pem_or_der};
    use p384::ecdsa::signature::Verifier as _;
    const KIND: TeeKind = TeeKind::SevSnp;
    const SIG: &str = "SEV-SNP report signature";

    // 1. Structure.
    let r = SnpReport::parse(report)?;
    match r.signing_key {
        0 => {}
        1 => {
            return Err(Error::UnsupportedAlgorithm {
                kind: KIND,
                what: "VLEK-signed report (only VCEK-signed reports are supported)",
            });
        }
        _ => {
            return Err(Error::UnsupportedAlgorithm {
                kind: KIND,
                what: "report signing key (not VCEK)",
            });
        }
    }

    // 2. Signature field (checked here, verified in step 6).
    let sig = &r.signature;
    let (r_le, s_le, reserved) = (&sig[..72], &sig[72..144], &sig[144..]);
    if r_le[48..].iter().any(|&b| b != 0) || s_le[48..].iter().any(|&b| b != 0) {
        return Err(Error::Malformed {
            what: SIG,
            reason: "R or S padding (bytes 48..72) is not zero",
        });
    }
    if reserved.iter().any(|&b| b != 0) {
        return Err(Error::Malformed {
            what: SIG,
            reason: "reserved bytes after R and S are not zero",
        });
    }
    let mut r_be = [0u8; 48];
    let mut s_be = [0u8; 48];
    r_be.copy_from_slice(&r_le[..48]);
    s_be.copy_from_slice(&s_le[..48]);
    r_be.reverse();
    s_be.reverse();
    let signature =
        p384::ecdsa::Signature::from_scalars(r_be, s_be).map_err(|_| Error::Malformed {
            what: SIG,
            reason: "R or S is zero or not below the group order",
        })?;
    let vcek = cert_from_pem_or_der(vcek, KIND, "VCEK")?;

    // 3. VCEK -> ASK -> ARK, the ARK pinned per product.
    let supplied: Vec<Cert> = match chain {
        Some(c) => certs_from_pem_or_der(c, KIND, "ASK/ARK chain")?,
        None => Vec::new(),
    };
    if supplied.len() > 2 {
        return Err(Error::BadCertificate {
            kind: KIND,
            which: "ASK/ARK chain".into(),
            reason: "more than two certificates (expected ASK, then ARK)",
        });
    }
    let product = SnpProduct::ALL
        .into_iter()
        .find(|p| {
            Cert::from_der(p.ask_der(), KIND, "ASK")
                .map(|ask| {
                    ask.parsed.tbs_certificate().subject() == vcek.parsed.tbs_certificate().issuer()
                })
                .unwrap_or(false)
        })
        .ok_or(Error::BadCertificate {
            kind: KIND,
            which: vcek.name.clone(),
            reason: "issuer is not the ASK of Milan, Genoa or Turin",
        })?;
    let ark = Cert::from_der(product.ark_der(), KIND, "ARK")?;
    // Any ARK the host supplied must be the pinned one, byte for byte.
    for given in supplied
        .get(1)
        .map(|c| c.der.as_slice())
        .into_iter()
        .chain(table_ark)
    {
        if given != ark.der.as_slice() {
            return Err(Error::UntrustedRoot {
                kind: KIND,
                fingerprint: hex::encode(crate::pki::fingerprint(given)),
            });
        }
    }
    let ask = match supplied.into_iter().next() {
        Some(a) => Cert {
            name: format!("ASK ({})", a.parsed.tbs_certificate().subject()),
            ..a
        },
        None => Cert::from_der(product.ask_der(), KIND, "ASK")?,
    };
    let (sev_ark, sev_ask, sev_vcek) = (sev_cert(&ark)?, sev_cert(&ask)?, sev_cert(&vcek)?);
    sev_verify(&sev_ark, &sev_ark, &ark)?;
    sev_verify(&sev_ark, &sev_ask, &ask)?;
    sev_verify(&sev_ask, &sev_vcek, &vcek)?;

    // 4. Validity at now.
    for c in [&ark, &ask, &vcek] {
        c.check_validity(KIND, now_unix)?;
    }

    // 4b. Revocation: AMD's CRL, signed by the pinned ARK and valid at now, lists neither the
    //     ASK nor the VCEK (nor the ARK).
    let crl_window = match crl {
        Some(c) => Some(crl::check_chain(c, &ark, &ask, &vcek, now_unix)?),
        None => None,
    };

    // 5. The VCEK belongs to this chip and this TCB.
    if r.chip_id.iter().all(|&b| b == 0) {
        return Err(Error::ChipIdMasked);
    }
    let hwid = vcek
        .extension(&oid::HW_ID)
        .ok_or(Error::EndorsementMismatch {
            kind: KIND,
            what: "VCEK lacks the hwID extension",
        })?;
    let hwid = if hwid.len() == 64 || hwid.len() == 8 {
        hwid.to_vec()
    } else {
        use der::Decode as _;
        der::asn1::OctetString::from_der(hwid)
            .map(|o| o.as_bytes().to_vec())
            .map_err(|_| Error::EndorsementMismatch {
                kind: KIND,
                what: "VCEK hwID is neither 8 nor 64 bytes",
            })?
    };
    let chip_ok = match (product, hwid.len()) {
        (_, 64) => hwid[..] == r.chip_id[..],
        (SnpProduct::Turin, 8) => hwid[..] == r.chip_id[..8],
        _ => false,
    };
    if !chip_ok {
        return Err(Error::EndorsementMismatch {
            kind: KIND,
            what: "VCEK hwID differs from the report's CHIP_ID",
        });
    }
    let [bl, tee, snp, ucode] = product.tcb_components(r.reported_tcb);
    let checks = [
        (
            oid::BL_SPL,
            bl,
            "VCEK boot loader SPL differs from REPORTED_TCB",
        ),
        (oid::TEE_SPL, tee, "VCEK TEE SPL differs from REPORTED_TCB"),
        (oid::SNP_SPL, snp, "VCEK SNP SPL differs from REPORTED_TCB"),
        (
            oid::UCODE_SPL,
            ucode,
            "VCEK microcode SPL differs from REPORTED_TCB",
        ),
    ];
    for (o, want, what) in checks {
        if spl(&vcek, &o)? != want {
            return Err(Error::EndorsementMismatch { kind: KIND, what });
        }
    }
    if product == SnpProduct::Turin {
        let fmc = r.reported_tcb.0.to_le_bytes()[0];
        if spl(&vcek, &oid::FMC_SPL)? != fmc {
            return Err(Error::EndorsementMismatch {
                kind: KIND,
                what: "VCEK FMC SPL differs from REPORTED_TCB",
            });
        }
    }

    // 6. The report signature, by the VCEK, over the raw signed bytes.
    vcek.p384_key(KIND)?
        .verify(&r.signed, &signature)
        .map_err(|_| Error::BadSignature(KIND))?;

    let mut claims = r.claims_unverified();
    claims.tcb = Tcb([bl, tee, snp, ucode].map(u16::from).to_vec());
    claims.platform.vmpl = Some(r.vmpl);
    claims.platform.crl = crl_window;
    let regs = &mut claims.platform.registers;
    regs.insert("host_data".into(), Measurement(r.host_data.to_vec()));
    regs.insert("family_id".into(), Measurement(r.family_id.to_vec()));
    regs.insert("image_id".into(), Measurement(r.image_id.to_vec()));
    regs.insert(
        "id_key_digest".into(),
        Measurement(r.id_key_digest.to_vec()),
    );
    regs.insert(
        "author_key_digest".into(),
        Measurement(r.author_key_digest.to_vec()),
    );
    Ok(claims)
}

#[cfg(test)]
pub(crate) mod tests;
