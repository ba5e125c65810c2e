//! Intel PCS v4: TCB info, QE identity, PCK CRL, root CA CRL → [`DcapCollateral`].
//!
//! - `GET {base}/{sgx|tdx}/certification/v4/tcb?fmspc=..` → `{"tcbInfo":{..},"signature":".."}`
//!   with header `TCB-Info-Issuer-Chain`;
//! - `GET {base}/{sgx|tdx}/certification/v4/qe/identity` →
//!   `{"enclaveIdentity":{..},"signature":".."}` with `SGX-Enclave-Identity-Issuer-Chain`;
//! - `GET {base}/sgx/certification/v4/pckcrl?ca=platform|processor&encoding=der` → DER with
//!   `SGX-PCK-CRL-Issuer-Chain`;
//! - the root CA CRL from [`crate::Config::intel_root_ca_crl_url`].
//!
//! Headers are percent-encoded PEM. The signed JSON objects are kept byte for byte: their
//! signatures cover the exact text.

use clave_attest::TeeKind;
use clave_attest::dcap::{CollateralRequest, DcapCollateral, PckCa};

use crate::format::{self, Shape};
use crate::{Error, Fetched, Fetcher, Resource, shape_error};

/// A signed JSON object of Intel PCS (TCB info or QE identity), split for [`DcapCollateral`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCollateral {
    /// The inner object's exact text.
    pub body: String,
    /// Its signature (64 bytes `r‖s`).
    pub signature: Vec<u8>,
    /// The signer's PEM chain (from the response header).
    pub issuer_chain: String,
}

/// A PCK CRL with its issuer chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PckCrl {
    /// The CRL (DER).
    pub der: Vec<u8>,
    /// The issuer's PEM chain (from the response header).
    pub issuer_chain: String,
}

fn tee_path(kind: TeeKind) -> Result<&'static str, Error> {
    match kind {
        TeeKind::Tdx => Ok("tdx"),
        TeeKind::SgxDcap => Ok("sgx"),
        k => Err(Error::InvalidRequest(format!(
            "Intel collateral exists for tdx and sgx_dcap, not {k}"
        ))),
    }
}

fn tcb_info_shape(b: &[u8]) -> Result<Vec<u8>, Shape> {
    format::signed_json(b, "tcbInfo")?;
    Ok(b.to_vec())
}

fn qe_identity_shape(b: &[u8]) -> Result<Vec<u8>, Shape> {
    format::signed_json(b, "enclaveIdentity")?;
    Ok(b.to_vec())
}

/// The cache file name of the TCB info for `kind` and `fmspc`.
pub fn tcb_info_cache_name(kind: TeeKind, fmspc: &[u8; 6]) -> Result<String, Error> {
    Ok(format!(
        "intel-{}-tcb-{}.json",
        tee_path(kind)?,
        hex::encode(fmspc)
    ))
}

/// The cache file name of the QE identity for `kind`.
pub fn qe_identity_cache_name(kind: TeeKind) -> Result<String, Error> {
    Ok(format!("intel-{}-qe-identity.json", tee_path(kind)?))
}

/// The cache file name of the PCK CRL of `ca`.
pub fn pck_crl_cache_name(ca: PckCa) -> String {
    format!("intel-pckcrl-{}.json", ca.as_str())
}

/// The cache file name of the Intel SGX Root CA CRL.
pub const ROOT_CA_CRL_CACHE_NAME: &str = "intel-root-ca-crl.json";

fn split_signed(f: Fetched, key: &str, what: &'static str) -> Result<SignedCollateral, Error> {
    let (body, signature) =
        format::signed_json(&f.body, key).map_err(|s| shape_error(what, &f.source_name, s))?;
    Ok(SignedCollateral {
        body,
        signature,
        issuer_chain: f.issuer_chain.unwrap_or_default(),
    })
}

impl Fetcher {
    fn pcs(&self, tee: &str, rest: &str) -> String {
        format!(
            "{}/{tee}/certification/v4/{rest}",
            self.config.intel_pcs_url
        )
    }

    /// The TCB info for `kind` ([`TeeKind::Tdx`] or [`TeeKind::SgxDcap`]) and `fmspc`.
    pub async fn tcb_info(
        &self,
        kind: TeeKind,
        fmspc: &[u8; 6],
    ) -> Result<SignedCollateral, Error> {
        let tee = tee_path(kind)?;
        let res = Resource {
            what: "TCB info",
            cache_name: tcb_info_cache_name(kind, fmspc)?,
            url: self.pcs(tee, &format!("tcb?fmspc={}", hex::encode_upper(fmspc))),
            issuer_header: Some("TCB-Info-Issuer-Chain"),
            normalise: tcb_info_shape,
            not_after: None,
        };
        split_signed(self.get(&res).await?, "tcbInfo", "TCB info")
    }

    /// The QE identity for `kind` (the TD QE for TDX, the QE for SGX).
    pub async fn qe_identity(&self, kind: TeeKind) -> Result<SignedCollateral, Error> {
        let tee = tee_path(kind)?;
        let res = Resource {
            what: "QE identity",
            cache_name: qe_identity_cache_name(kind)?,
            url: self.pcs(tee, "qe/identity"),
            issuer_header: Some("SGX-Enclave-Identity-Issuer-Chain"),
            normalise: qe_identity_shape,
            not_after: None,
        };
        split_signed(self.get(&res).await?, "enclaveIdentity", "QE identity")
    }

    /// The PCK CRL of `ca` (DER) with its issuer chain.
    pub async fn pck_crl(&self, ca: PckCa) -> Result<PckCrl, Error> {
        let res = Resource {
            what: "PCK CRL",
            cache_name: pck_crl_cache_name(ca),
            url: self.pcs("sgx", &format!("pckcrl?ca={}&encoding=der", ca.as_str())),
            issuer_header: Some("SGX-PCK-CRL-Issuer-Chain"),
            normalise: format::crl_der,
            not_after: None,
        };
        let f = self.get(&res).await?;
        Ok(PckCrl {
            der: f.body,
            issuer_chain: f.issuer_chain.unwrap_or_default(),
        })
    }

    /// The Intel SGX Root CA CRL (DER; a PCCS's hex form is accepted and decoded).
    pub async fn root_ca_crl(&self) -> Result<Vec<u8>, Error> {
        let res = Resource {
            what: "Intel root CA CRL",
            cache_name: ROOT_CA_CRL_CACHE_NAME.into(),
            url: self.config.intel_root_ca_crl_url.clone(),
            issuer_header: None,
            normalise: format::crl_der,
            not_after: None,
        };
        Ok(self.get(&res).await?.body)
    }

    /// Everything a quote described by `req` needs, fetched concurrently.
    pub async fn dcap_collateral(&self, req: &CollateralRequest) -> Result<DcapCollateral, Error> {
        let (tcb, qe, pck, root) = tokio::try_join!(
            self.tcb_info(req.kind, &req.fmspc),
            self.qe_identity(req.kind),
            self.pck_crl(req.ca),
            self.root_ca_crl(),
        )?;
        Ok(DcapCollateral {
            pck_crl_issuer_chain: pck.issuer_chain,
            root_ca_crl: root,
            pck_crl: pck.der,
            tcb_info_issuer_chain: tcb.issuer_chain,
            tcb_info: tcb.body,
            tcb_info_signature: tcb.signature,
            qe_identity_issuer_chain: qe.issuer_chain,
            qe_identity: qe.body,
            qe_identity_signature: qe.signature,
        })
    }

    /// [`Fetcher::dcap_collateral`] for a raw TDX or SGX quote (FMSPC and CA read from its PCK
    /// certificate by `clave_attest::dcap::collateral_request`).
    pub async fn dcap_collateral_for_quote(&self, quote: &[u8]) -> Result<DcapCollateral, Error> {
        let req = clave_attest::dcap::collateral_request(quote)?;
        self.dcap_collateral(&req).await
    }
}
