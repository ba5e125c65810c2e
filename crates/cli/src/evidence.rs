//! `clave evidence verify`: verify one piece of real TEE evidence (SEV-SNP report, TDX or SGX
//! quote, Nitro attestation document) against the built-in, pinned vendor roots, and print the
//! verified claims as JSON.
//!
//! Exit codes, the scheme of `clave --help` ([`exit`]): 0 verified (claims on stdout), 3
//! attestation failed (one line on stderr naming the check that failed, as `clave attest`), 1 the
//! collateral could not be fetched, 2 usage or input error (one sentence on stderr). No flag
//! replaces a root.
//! Without `--expect-report-data` the report data is reported, not checked
//! (`"report_data_checked": false`); without `--expect-measurement` or `--policy` the
//! measurement is reported, not enforced (`"measurement_enforced": false`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clave_attest::dcap::DcapCollateral;
use clave_attest::snp::SnpProduct;
use clave_attest::{
    Claims, Endorsements, Error as AttestError, Evidence, Identity, Measurement, Policy,
    ReportData, Tcb, TeeKind,
};

use crate::config::one_line;
use crate::output::exit;

/// The TEE kinds `--tee` names.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeeArg {
    /// AMD SEV-SNP attestation report (0x4A0 bytes).
    Snp,
    /// Intel TDX quote (v4/v5).
    Tdx,
    /// Intel SGX DCAP quote (v3).
    Sgx,
    /// AWS Nitro attestation document (COSE_Sign1).
    Nitro,
}

impl TeeArg {
    fn kind(self) -> TeeKind {
        match self {
            TeeArg::Snp => TeeKind::SevSnp,
            TeeArg::Tdx => TeeKind::Tdx,
            TeeArg::Sgx => TeeKind::SgxDcap,
            TeeArg::Nitro => TeeKind::Nitro,
        }
    }
}

/// AMD product for `--product`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProductArg {
    /// EPYC 7003.
    Milan,
    /// EPYC 9004.
    Genoa,
    /// EPYC 9005.
    Turin,
}

/// `clave evidence verify`.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "\
Examples:
  clave evidence verify --tee snp --evidence report.hex --vcek vcek.pem --at 2026-01-01T00:00:00Z
  clave evidence verify --tee tdx --evidence quote.bin --collateral collateral.json \\
      --expect-measurement f06dfda6...
  clave evidence verify --tee snp --evidence report.bin --fetch-collateral --collateral-cache ~/.cache/clave
  clave evidence verify --tee snp --evidence report.bin --vcek vcek.der --crl milan.crl --policy strict.json
  clave evidence verify --tee nitro --evidence doc.b64 --expect-pcr 0=... --expect-pcr 8=...

FILE may be raw binary, hex or base64 (detected); certificates may also be PEM.
Exit codes (those of `clave --help`): 0 verified (claims as JSON on stdout); 3 attestation failed:
the evidence does not verify or does not satisfy what you required (one line on stderr); 1 failed
otherwise (e.g. the collateral could not be fetched); 2 usage: bad arguments or input files.
The vendor roots (AMD ARKs, Intel SGX Root CA, AWS Nitro root) are built in; no flag replaces them.")]
pub struct EvidenceVerifyArgs {
    /// The kind of evidence.
    #[arg(long, value_enum)]
    pub tee: TeeArg,
    /// The evidence file (raw, hex or base64; a clave evidence envelope is accepted too).
    #[arg(long, value_name = "FILE")]
    pub evidence: PathBuf,
    /// SEV-SNP: the VCEK certificate (PEM, DER, hex or base64).
    #[arg(long, value_name = "FILE")]
    pub vcek: Option<PathBuf>,
    /// SEV-SNP: AMD's cert_chain (PEM: ASK, then ARK) or the ASK; the built-in ASK otherwise.
    #[arg(long, value_name = "FILE")]
    pub chain: Option<PathBuf>,
    /// SEV-SNP: AMD's CRL for the product (DER, PEM, hex or base64, as served at
    /// kdsintf.amd.com/vcek/v1/{product}/crl); checked against the built-in ARK.
    #[arg(long, value_name = "FILE")]
    pub crl: Option<PathBuf>,
    /// TDX/SGX: Intel collateral as JSON (dcap-qvl `QuoteCollateralV3` field names).
    #[arg(long, value_name = "FILE", conflicts_with = "fetch_collateral")]
    pub collateral: Option<PathBuf>,
    /// Fetch missing endorsements from AMD KDS / Intel PCS.
    #[arg(long)]
    pub fetch_collateral: bool,
    /// Cache directory for fetched endorsements.
    #[arg(long, value_name = "DIR", requires = "fetch_collateral")]
    pub collateral_cache: Option<PathBuf>,
    /// SEV-SNP: the AMD product, for version 2 reports (later versions name it).
    #[arg(long, value_enum)]
    pub product: Option<ProductArg>,
    /// Verify as of this time (RFC 3339, e.g. 2026-01-01T00:00:00Z); default now.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Require this measurement (hex; repeat to allow several).
    #[arg(long, value_name = "HEX", conflicts_with = "policy")]
    pub expect_measurement: Vec<String>,
    /// Require this report data (hex, exactly 64 bytes).
    #[arg(long, value_name = "HEX")]
    pub expect_report_data: Option<String>,
    /// Require a register: `N=HEX` for Nitro PCR N, or `NAME=HEX` (TDX `rtmr0`.., SNP `host_data`..).
    #[arg(long, value_name = "N=HEX", conflicts_with = "policy")]
    pub expect_pcr: Vec<String>,
    /// Minimum TCB, comma-separated components (SNP: bl,tee,snp,ucode).
    #[arg(long, value_name = "N,N,..", conflicts_with = "policy")]
    pub min_tcb: Option<String>,
    /// A policy file (JSON, see clave-attest's README) instead of the --expect-* flags.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// A usage or input error (exit 2, [`exit::USAGE`]).
#[derive(Debug)]
struct Usage(String);

fn usage<T>(msg: impl Into<String>) -> Result<T, Usage> {
    Err(Usage(msg.into()))
}

/// Runs `clave evidence verify` and returns its exit code, in the scheme of `clave --help`
/// ([`exit`]): the claims JSON on stdout (0), or one line on stderr: the evidence refused (3,
/// like `clave attest`), the collateral not fetched (1), a usage sentence (2).
pub async fn run(args: &EvidenceVerifyArgs) -> ExitCode {
    let input = match prepare(args) {
        Ok(i) => i,
        Err(Usage(msg)) => {
            eprintln!("error: {msg}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let endorsements = match (args.fetch_collateral, input.endorsements) {
        (true, mut e) => match fetch(args, &input.evidence).await {
            Ok(f) => {
                e.snp_vcek = e.snp_vcek.or(f.snp_vcek);
                e.snp_chain = e.snp_chain.or(f.snp_chain);
                e.snp_crl = e.snp_crl.or(f.snp_crl);
                e.dcap = e.dcap.or(f.dcap);
                e
            }
            Err(msg) => {
                eprintln!("failed: collateral: {msg}");
                return ExitCode::from(exit::REFUSED);
            }
        },
        (false, e) => e,
    };
    match verify(&input.evidence, &endorsements, &input.check, input.now) {
        Ok(out) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&out).unwrap_or_else(|_| "{}".into())
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("refused: {}: {}", check_name(&e), one_line(&e.to_string()));
            ExitCode::from(exit::ATTESTATION)
        }
    }
}

/// What the user asked to enforce.
struct Check {
    /// A full policy (`--policy`) or `None` (built from the flags below).
    policy: Option<Policy>,
    measurements: Vec<Measurement>,
    registers: BTreeMap<String, Measurement>,
    min_tcb: Option<Tcb>,
    report_data: Option<ReportData>,
}

struct Input {
    evidence: Evidence,
    endorsements: Endorsements,
    check: Check,
    now: u64,
}

fn read_file(flag: &str, path: &Path) -> Result<Vec<u8>, Usage> {
    std::fs::read(path).or_else(|e| usage(format!("cannot read {flag} {}: {e}", path.display())))
}

fn prepare(args: &EvidenceVerifyArgs) -> Result<Input, Usage> {
    let kind = args.tee.kind();
    let raw = decode_input(&read_file("--evidence", &args.evidence)?);
    let evidence = if raw.starts_with(&clave_attest::EVIDENCE_MAGIC) {
        let ev = Evidence::from_bytes(&raw)
            .or_else(|e| usage(format!("--evidence is not a valid clave envelope: {e}")))?;
        if ev.kind() != kind {
            return usage(format!(
                "--evidence holds {} evidence, not {kind}",
                ev.kind()
            ));
        }
        ev
    } else {
        match args.tee {
            TeeArg::Snp => Evidence::SevSnp {
                report: raw,
                certs: None,
            },
            TeeArg::Tdx => Evidence::Tdx { quote: raw },
            TeeArg::Sgx => Evidence::SgxDcap { quote: raw },
            TeeArg::Nitro => Evidence::Nitro { document: raw },
        }
    };
    let snp_only = |flag: &str| -> Result<(), Usage> {
        if args.tee != TeeArg::Snp {
            return usage(format!("{flag} applies to --tee snp only"));
        }
        Ok(())
    };
    let mut endorsements = Endorsements::default();
    if let Some(p) = &args.vcek {
        snp_only("--vcek")?;
        endorsements.snp_vcek = Some(cert_input(&read_file("--vcek", p)?));
    }
    if let Some(p) = &args.chain {
        snp_only("--chain")?;
        endorsements.snp_chain = Some(cert_input(&read_file("--chain", p)?));
    }
    if let Some(p) = &args.crl {
        snp_only("--crl")?;
        endorsements.snp_crl = Some(cert_input(&read_file("--crl", p)?));
    }
    if args.product.is_some() {
        snp_only("--product")?;
    }
    if let Some(p) = &args.collateral {
        if !matches!(args.tee, TeeArg::Tdx | TeeArg::Sgx) {
            return usage("--collateral applies to --tee tdx or sgx only");
        }
        let text = String::from_utf8(read_file("--collateral", p)?)
            .or_else(|_| usage("--collateral is not UTF-8 JSON"))?;
        endorsements.dcap = Some(DcapCollateral::from_json(&text).or_else(|_| {
            usage("--collateral is not Intel collateral JSON (QuoteCollateralV3 fields)")
        })?);
    }
    let now = match &args.at {
        Some(s) => {
            parse_rfc3339(s).ok_or_else(|| Usage(format!("--at {s:?} is not an RFC 3339 time")))?
        }
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .or_else(|_| usage("the system clock is before 1970"))?,
    };
    let policy = match &args.policy {
        None => None,
        Some(p) => {
            let text = String::from_utf8(read_file("--policy", p)?)
                .or_else(|_| usage("--policy is not UTF-8 JSON"))?;
            let policy = Policy::from_json(&text)
                .or_else(|e| usage(format!("--policy is not a valid policy: {e}")))?;
            Some(policy)
        }
    };
    let mut measurements = Vec::new();
    for m in &args.expect_measurement {
        measurements.push(
            Measurement::from_hex(strip_0x(m))
                .or_else(|_| usage(format!("--expect-measurement {m:?} is not hex")))?,
        );
    }
    let mut registers = BTreeMap::new();
    for r in &args.expect_pcr {
        let (name, value) = parse_register(kind, r)?;
        registers.insert(name, value);
    }
    let min_tcb = match &args.min_tcb {
        None => None,
        Some(s) => Some(Tcb(s
            .split(',')
            .map(|c| c.trim().parse::<u16>())
            .collect::<Result<Vec<_>, _>>()
            .or_else(|_| {
                usage(format!(
                    "--min-tcb {s:?} is not a comma-separated list of numbers"
                ))
            })?)),
    };
    let report_data = match &args.expect_report_data {
        None => None,
        Some(h) => {
            let b =
                hex::decode(strip_0x(h)).or_else(|_| usage("--expect-report-data is not hex"))?;
            let arr: [u8; 64] = b.try_into().or_else(|b: Vec<u8>| {
                usage(format!(
                    "--expect-report-data must be 64 bytes (128 hex digits), not {}",
                    b.len()
                ))
            })?;
            Some(ReportData(arr))
        }
    };
    Ok(Input {
        evidence,
        endorsements,
        check: Check {
            policy,
            measurements,
            registers,
            min_tcb,
            report_data,
        },
        now,
    })
}

fn strip_0x(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix("0x").unwrap_or(s)
}

/// `N=HEX` (Nitro PCR N) or `NAME=HEX` (a register name of the kind).
fn parse_register(kind: TeeKind, arg: &str) -> Result<(String, Measurement), Usage> {
    let Some((n, v)) = arg.split_once('=') else {
        return usage(format!("--expect-pcr {arg:?} is not N=HEX"));
    };
    let name = if n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() {
        format!("pcr{}", n.parse::<u8>().unwrap_or(u8::MAX))
    } else {
        n.to_ascii_lowercase()
    };
    if !clave_attest::policy::register_name_allowed(kind, &name) {
        return usage(format!("--expect-pcr: {kind} has no register {n:?}"));
    }
    let m = Measurement::from_hex(strip_0x(v))
        .or_else(|_| usage(format!("--expect-pcr {arg:?}: the value is not hex")))?;
    Ok((name, m))
}

/// A certificate file: PEM passes through, anything else is decoded like evidence.
fn cert_input(b: &[u8]) -> Vec<u8> {
    if clave_attest::pem::is_pem(b) {
        b.to_vec()
    } else {
        decode_input(b)
    }
}

/// Detects the encoding of an input file: hex (optional `0x`, whitespace ignored), then base64
/// (standard or URL-safe, padding optional, whitespace ignored), else raw bytes.
fn decode_input(b: &[u8]) -> Vec<u8> {
    let compact: Vec<u8> = b
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let body = compact.strip_prefix(b"0x").unwrap_or(&compact[..]);
    if !body.is_empty()
        && body.len().is_multiple_of(2)
        && body.iter().all(u8::is_ascii_hexdigit)
        && let Ok(v) = hex::decode(body)
    {
        return v;
    }
    if compact.len() >= 4
        && let Some(v) = base64_decode(&compact)
    {
        return v;
    }
    b.to_vec()
}

/// Base64 (RFC 4648 standard or URL-safe alphabet, padding optional). `None` if anything else.
fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::alphabet::{STANDARD, URL_SAFE};
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    [
        GeneralPurpose::new(&STANDARD, config),
        GeneralPurpose::new(&URL_SAFE, config),
    ]
    .iter()
    .find_map(|engine| engine.decode(s).ok())
}

async fn fetch(args: &EvidenceVerifyArgs, evidence: &Evidence) -> Result<Endorsements, String> {
    let mut config = clave_collateral::Config::default();
    config.cache_dir = args.collateral_cache.clone();
    let fetcher = clave_collateral::Fetcher::new(config).map_err(|e| e.to_string())?;
    let product = args.product.map(|p| match p {
        ProductArg::Milan => SnpProduct::Milan,
        ProductArg::Genoa => SnpProduct::Genoa,
        ProductArg::Turin => SnpProduct::Turin,
    });
    fetcher
        .endorsements_for(evidence, product)
        .await
        .map_err(|e| one_line(&e.to_string()))
}

/// Verify the cryptography, then appraise; returns the output JSON.
fn verify(
    evidence: &Evidence,
    endorsements: &Endorsements,
    check: &Check,
    now: u64,
) -> Result<serde_json::Value, AttestError> {
    let claims = clave_attest::verify_evidence_with(evidence, endorsements, now)?;
    let kind = claims.kind;
    let (policy, measurement_enforced) = match &check.policy {
        Some(p) => (p.clone(), true),
        None => {
            let enforced = !check.measurements.is_empty();
            let ms = if enforced {
                check.measurements.clone()
            } else {
                vec![claims.measurement.clone()]
            };
            let mut p = Policy::measurements([kind], ms)?;
            if !check.registers.is_empty() {
                p.registers.insert(kind, check.registers.clone());
            }
            if let Some(t) = &check.min_tcb {
                p.min_tcb.insert(kind, t.clone());
            }
            (p, enforced)
        }
    };
    policy.validate()?;
    let expected = check.report_data.unwrap_or(claims.report_data);
    clave_attest::appraise(&claims, &policy, &expected, now)?;
    Ok(output(
        &claims,
        &policy,
        measurement_enforced,
        check.report_data.is_some(),
        now,
    ))
}

fn output(
    c: &Claims,
    policy: &Policy,
    measurement_enforced: bool,
    report_data_checked: bool,
    now: u64,
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "verified": true,
        "kind": c.kind.as_str(),
        "measurement": c.measurement.to_hex(),
        "measurement_enforced": measurement_enforced,
        "debug": c.debug,
        "tcb": c.tcb.0,
        "report_data": hex::encode(c.report_data.0),
        "report_data_checked": report_data_checked,
        "verified_at": format_rfc3339(now),
        "verified_at_unix": now,
    });
    let obj = v.as_object_mut().expect("a JSON object literal");
    if let Some(s) = &c.signer {
        obj.insert("signer".into(), s.to_hex().into());
        obj.insert("svn".into(), c.svn.into());
    }
    if let Some(p) = c.product_id {
        obj.insert("product_id".into(), p.into());
    }
    if let Some(t) = c.issued_at {
        obj.insert("issued_at".into(), format_rfc3339(t).into());
    }
    let p = &c.platform;
    if !p.registers.is_empty() {
        let regs: serde_json::Map<String, serde_json::Value> = p
            .registers
            .iter()
            .map(|(k, m)| (k.clone(), m.to_hex().into()))
            .collect();
        obj.insert("registers".into(), regs.into());
        let enforced: Vec<&String> = policy
            .registers
            .get(&c.kind)
            .map(|r| r.keys().collect())
            .unwrap_or_default();
        obj.insert("registers_enforced".into(), serde_json::json!(enforced));
    }
    if let Some(vmpl) = p.vmpl {
        obj.insert("vmpl".into(), vmpl.into());
    }
    if c.kind == TeeKind::SevSnp {
        obj.insert("revocation_checked".into(), p.crl.is_some().into());
        if let Some(w) = p.crl {
            obj.insert(
                "crl_this_update".into(),
                format_rfc3339(w.this_update).into(),
            );
            obj.insert(
                "crl_next_update".into(),
                format_rfc3339(w.next_update).into(),
            );
        }
    }
    if let Some(a) = p.td_attributes {
        obj.insert("td_attributes".into(), format!("{a:016x}").into());
    }
    if let Some(s) = &p.tcb_status {
        obj.insert("tcb_status".into(), s.clone().into());
        obj.insert("advisory_ids".into(), serde_json::json!(p.advisory_ids));
        obj.insert("platform_flags".into(), serde_json::json!(p.platform_flags));
    }
    if let Identity::Signer(_) = policy.identity {
        obj.insert("measurement_enforced".into(), false.into());
        obj.insert("signer_enforced".into(), true.into());
    }
    v
}

/// The name of the check an error comes from, for the refusal line.
fn check_name(e: &AttestError) -> &'static str {
    use AttestError as E;
    match e {
        E::Truncated { .. }
        | E::TrailingBytes { .. }
        | E::BadMagic
        | E::UnsupportedVersion { .. }
        | E::UnknownKind(_)
        | E::TooLarge { .. }
        | E::Malformed { .. } => "format",
        E::BadSignature(_) => "signature",
        E::BadCertificate { .. } | E::BadCertificateSignature { .. } => "certificate chain",
        E::UntrustedRoot { .. } => "root",
        E::CertificateNotValidAt { .. } => "validity",
        E::UnsupportedAlgorithm { .. } => "algorithm",
        E::MissingEndorsement { .. } => "endorsement",
        E::EndorsementMismatch { .. } | E::ChipIdMasked => "endorsement binding",
        E::QuoteVerification { .. } => "quote verification",
        E::CrlMalformed { .. }
        | E::CrlWrongIssuer { .. }
        | E::CrlBadSignature { .. }
        | E::CrlNotYetValid { .. }
        | E::CrlExpired { .. } => "crl",
        E::CertificateRevoked { .. } | E::RevocationNotChecked(_) => "revocation",
        E::InvalidPolicy(_) => "policy",
        E::KindNotAccepted(_) => "kind",
        E::InsecureNotAllowed => "insecure",
        E::DebugEnabled => "debug",
        E::MeasurementNotAllowed { .. } => "measurement",
        E::SignerNotAllowed { .. } | E::SvnTooLow { .. } => "signer",
        E::TcbTooLow { .. } => "tcb",
        E::VmplNotAllowed { .. } => "vmpl",
        E::RegisterMismatch { .. } => "register",
        E::TcbStatusNotAccepted { .. } => "tcb status",
        E::PlatformFlagNotAllowed { .. } => "platform flags",
        E::TdAttributesNotAllowed { .. } => "td attributes",
        E::UserDataMismatch => "report data",
        E::Expired { .. } | E::IssuedInFuture { .. } | E::MissingTimestamp => "age",
        _ => "verification",
    }
}

/// Parses an RFC 3339 date-time (`2026-01-01T00:00:00Z`, `…T01:00:00.5+01:00`) into unix
/// seconds (fractions truncated; a leap second `:60` is the last second of its minute). Times
/// before 1970 are refused.
fn parse_rfc3339(s: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

/// `2025-08-15T05:45:00Z`; decimal unix seconds for a time RFC 3339 cannot write (after 9999).
fn format_rfc3339(t: u64) -> String {
    i64::try_from(t)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

#[cfg(test)]
mod tests;
