//! AMD KDS: VCEK by chip and TCB, the ASK/ARK chain, the CRL.
//!
//! `GET {base}/vcek/v1/{product}/{hwid}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..` (Turin also
//! `fmcSPL`, and only the first 8 bytes of the chip id) → DER;
//! `GET {base}/vcek/v1/{product}/cert_chain` → PEM (ASK, then ARK);
//! `GET {base}/vcek/v1/{product}/crl` → DER CRL signed by the ARK.

use clave_attest::snp::{SnpProduct, SnpReport, SnpTcb};

use crate::format::{self, Shape};
use crate::{Error, Fetcher, Resource};

/// Offsets of CPUID_FAM_ID / CPUID_MOD_ID in reports of version 3 and later.
const OFF_CPUID_FAM: usize = 0x188;
const OFF_CPUID_MOD: usize = 0x189;

/// Which VCEK to ask AMD KDS for: product, chip id and the TCB it was derived for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VcekRequest {
    /// The product (selects the KDS path and, for Turin, the TCB layout).
    pub product: SnpProduct,
    /// The chip id (`CHIP_ID` of the report, 64 bytes).
    pub chip_id: [u8; 64],
    /// The TCB the VCEK is derived for (`REPORTED_TCB` of the report).
    pub tcb: SnpTcb,
}

/// The product a report of version 3 or later names in its CPUID fields.
pub(crate) fn product_from_cpuid(report: &[u8]) -> Option<SnpProduct> {
    let fam = *report.get(OFF_CPUID_FAM)?;
    let model = *report.get(OFF_CPUID_MOD)?;
    match (fam, model) {
        (0x19, 0x00..=0x0f) => Some(SnpProduct::Milan),
        (0x19, 0x10..=0x1f | 0xa0..=0xaf) => Some(SnpProduct::Genoa),
        (0x1a, 0x00..=0x1f) => Some(SnpProduct::Turin),
        _ => None,
    }
}

impl VcekRequest {
    /// Reads chip id and reported TCB from a raw SNP report (unverified: this only says what
    /// to fetch). The product comes from the report's CPUID fields (version 3 and later) or
    /// from `product`; if both are present they must agree.
    pub fn from_report(report: &[u8], product: Option<SnpProduct>) -> Result<VcekRequest, Error> {
        let r = SnpReport::parse(report)?;
        if r.signing_key != 0 {
            return Err(Error::InvalidRequest(
                "the report is not signed by a VCEK (VLEK reports need the cloud's VLEK)".into(),
            ));
        }
        if r.chip_id == [0; 64] {
            return Err(Error::InvalidRequest(
                "the report's chip id is masked (MASK_CHIP_ID); no VCEK can be fetched for it"
                    .into(),
            ));
        }
        let detected = if r.version >= 3 {
            product_from_cpuid(report)
        } else {
            None
        };
        let product = match (detected, product) {
            (Some(d), Some(p)) if d != p => {
                return Err(Error::InvalidRequest(format!(
                    "the report is from a {} CPU, not {}",
                    d.name(),
                    p.name()
                )));
            }
            (Some(d), _) => d,
            (None, Some(p)) => p,
            (None, None) => {
                return Err(Error::InvalidRequest(
                    "cannot tell the AMD product (Milan, Genoa, Turin) from this report; name it"
                        .into(),
                ));
            }
        };
        Ok(VcekRequest {
            product,
            chip_id: r.chip_id,
            tcb: r.reported_tcb,
        })
    }

    /// The hwID path segment: the 64-byte chip id in hex (Turin: its first 8 bytes).
    pub fn hwid_hex(&self) -> String {
        match self.product {
            SnpProduct::Turin => hex::encode(&self.chip_id[..8]),
            _ => hex::encode(self.chip_id),
        }
    }

    /// The query string with the TCB security patch levels.
    pub fn spl_query(&self) -> String {
        let [bl, tee, snp, ucode] = self.product.tcb_components(self.tcb);
        let mut q = format!("blSPL={bl:02}&teeSPL={tee:02}&snpSPL={snp:02}&ucodeSPL={ucode:02}");
        if self.product == SnpProduct::Turin {
            let fmc = self.tcb.0.to_le_bytes()[0];
            q.push_str(&format!("&fmcSPL={fmc:02}"));
        }
        q
    }

    /// The cache file name of this VCEK.
    pub fn cache_name(&self) -> String {
        let [bl, tee, snp, ucode] = self.product.tcb_components(self.tcb);
        let mut n = format!(
            "amd-{}-vcek-{}-{bl}-{tee}-{snp}-{ucode}",
            self.product.name(),
            self.hwid_hex()
        );
        if self.product == SnpProduct::Turin {
            n.push_str(&format!("-fmc{}", self.tcb.0.to_le_bytes()[0]));
        }
        n.push_str(".json");
        n
    }
}

fn cert_chain(b: &[u8]) -> Result<Vec<u8>, Shape> {
    format::pem_certificates(b)?;
    Ok(b.to_vec())
}

/// The cache file name of a product's ASK/ARK chain.
pub fn cert_chain_cache_name(product: SnpProduct) -> String {
    format!("amd-{}-cert_chain.json", product.name())
}

/// The `nextUpdate` of a CRL, if it parses (an upper bound for its cache entry; not trusted).
fn crl_next_update(der: &[u8]) -> Option<u64> {
    clave_attest::snp::crl::SnpCrl::parse(der)
        .ok()
        .map(|c| c.next_update())
}

/// The cache file name of a product's CRL.
pub fn crl_cache_name(product: SnpProduct) -> String {
    format!("amd-{}-crl.json", product.name())
}

impl Fetcher {
    fn kds(&self, product: SnpProduct, rest: &str) -> String {
        format!(
            "{}/vcek/v1/{}/{rest}",
            self.config.amd_kds_url,
            product.name()
        )
    }

    /// The VCEK (DER) for `req`.
    pub async fn vcek(&self, req: &VcekRequest) -> Result<Vec<u8>, Error> {
        let res = Resource {
            what: "VCEK certificate",
            cache_name: req.cache_name(),
            url: self.kds(
                req.product,
                &format!("{}?{}", req.hwid_hex(), req.spl_query()),
            ),
            issuer_header: None,
            normalise: format::certificate_der,
            not_after: None,
        };
        Ok(self.get(&res).await?.body)
    }

    /// AMD's `cert_chain` for `product` (PEM: ASK, then ARK).
    pub async fn snp_cert_chain(&self, product: SnpProduct) -> Result<Vec<u8>, Error> {
        let res = Resource {
            what: "AMD certificate chain",
            cache_name: cert_chain_cache_name(product),
            url: self.kds(product, "cert_chain"),
            issuer_header: None,
            normalise: cert_chain,
            not_after: None,
        };
        Ok(self.get(&res).await?.body)
    }

    /// AMD's CRL for `product` (DER, signed by the ARK; `clave-attest` checks it when it is
    /// passed as [`clave_attest::Endorsements::snp_crl`]). Cached like everything else, but
    /// never beyond the CRL's own `nextUpdate` (read without trusting it: it can only shorten
    /// the entry's life), so an online fetcher replaces a CRL before the verifier would refuse
    /// it as expired. Offline, the cached file is returned whatever its age.
    pub async fn snp_crl(&self, product: SnpProduct) -> Result<Vec<u8>, Error> {
        let res = Resource {
            what: "AMD CRL",
            cache_name: crl_cache_name(product),
            url: self.kds(product, "crl"),
            issuer_header: None,
            normalise: format::crl_der,
            not_after: Some(crl_next_update),
        };
        Ok(self.get(&res).await?.body)
    }

    /// VCEK, chain and (if [`crate::Config::fetch_snp_crl`], the default) the product's CRL for a
    /// raw SNP report (see [`VcekRequest::from_report`]), fetched concurrently. Any of them
    /// failing fails the call: a caller that asked for the CRL never silently gets none.
    pub async fn snp_endorsements(
        &self,
        report: &[u8],
        product: Option<SnpProduct>,
    ) -> Result<clave_attest::Endorsements, Error> {
        let req = VcekRequest::from_report(report, product)?;
        let crl = async {
            if self.config.fetch_snp_crl {
                self.snp_crl(req.product).await.map(Some)
            } else {
                Ok(None)
            }
        };
        let (vcek, chain, crl) =
            tokio::try_join!(self.vcek(&req), self.snp_cert_chain(req.product), crl)?;
        Ok(clave_attest::Endorsements {
            snp_vcek: Some(vcek),
            snp_chain: Some(chain),
            snp_crl: crl,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_names() {
        let mut chip = [0u8; 64];
        chip[0] = 0xab;
        chip[63] = 0x01;
        let r = VcekRequest {
            product: SnpProduct::Milan,
            chip_id: chip,
            tcb: SnpTcb(u64::from_le_bytes([4, 0, 0, 0, 0, 0, 24, 219])),
        };
        assert_eq!(r.spl_query(), "blSPL=04&teeSPL=00&snpSPL=24&ucodeSPL=219");
        assert_eq!(r.hwid_hex().len(), 128);
        assert!(r.cache_name().starts_with("amd-Milan-vcek-ab00"));
        assert!(r.cache_name().ends_with("-4-0-24-219.json"));
        let t = VcekRequest {
            product: SnpProduct::Turin,
            chip_id: chip,
            tcb: SnpTcb(u64::from_le_bytes([1, 2, 3, 4, 0, 0, 0, 9])),
        };
        assert_eq!(t.hwid_hex(), "ab00000000000000");
        assert_eq!(
            t.spl_query(),
            "blSPL=02&teeSPL=03&snpSPL=04&ucodeSPL=09&fmcSPL=01"
        );
        assert!(t.cache_name().ends_with("-fmc1.json"));
    }

    #[test]
    fn cpuid_products() {
        let mut r = vec![0u8; 0x4A0];
        r[OFF_CPUID_FAM] = 0x19;
        r[OFF_CPUID_MOD] = 0x01;
        assert_eq!(product_from_cpuid(&r), Some(SnpProduct::Milan));
        r[OFF_CPUID_MOD] = 0x11;
        assert_eq!(product_from_cpuid(&r), Some(SnpProduct::Genoa));
        r[OFF_CPUID_FAM] = 0x1a;
        r[OFF_CPUID_MOD] = 0x02;
        assert_eq!(product_from_cpuid(&r), Some(SnpProduct::Turin));
        r[OFF_CPUID_FAM] = 0x17;
        assert_eq!(product_from_cpuid(&r), None);
    }
}
