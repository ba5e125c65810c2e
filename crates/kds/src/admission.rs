//! Who may hold the master secret: the replica admission rule.
//!
//! The rule is part of the measured KDS, not of its configuration: a replica (joining or
//! admitting) must prove that it runs **the same TEE kind and the same measurement as this
//! KDS** — on TDX also the same boot-time runtime registers `rtmr0`..`rtmr2`, because `MRTD`
//! covers the firmware only — with the platform checks of clave-attest's defaults (debug
//! refused, SEV-SNP VMPL 0, DCAP `UpToDate`). A KDS on hardware therefore never admits the
//! simulated TEE, whatever its host configures; a KDS on the simulated TEE admits simulated
//! replicas of its own (dev) measurement, which is as insecure as the simulated TEE itself.
//!
//! The only way to admit a different image (an upgrade) is an explicit **admission policy**
//! ([`crate::KdsConfig::admission_policy`]). It comes from the host, so it is not trusted by
//! itself: its [`admission_policy_hash`] is bound into every attestation of this KDS
//! ([`clave_proto::kds_api::kds_attestation_report_data_with`]) and published next to the
//! evidence, so a client sees it and refuses a KDS whose admission policy it has not pinned.
//! An admission policy may not admit the simulated TEE on hardware (the KDS refuses to start),
//! and both ends of a join must hold the same one (the joiner checks the peer's binding with its
//! own hash).

use std::collections::BTreeMap;

use clave_attest::tdx::TdxQuote;
use clave_attest::{Attester, Claims, Evidence, Measurement, Policy, ReportData, TeeKind, verify};
use clave_proto::kds_api::admission_policy_hash;

use crate::Error;

/// TDX runtime registers a replica must share with this KDS (boot-time: firmware
/// configuration, kernel and command line, initrd). `rtmr3` is left to the running system.
const TDX_PINNED_RTMRS: usize = 3;

/// This KDS's admission rule for replicas (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    same_image: Policy,
    extra: Option<Policy>,
    extra_hash: Option<[u8; 32]>,
}

impl Admission {
    /// The rule of a KDS whose own evidence comes from `attester`, with an optional admission
    /// policy. Refuses an admission policy that admits the simulated TEE while this KDS runs on
    /// hardware, and an invalid one.
    pub fn new(attester: &dyn Attester, admission_policy: Option<Policy>) -> Result<Self, Error> {
        let kind = attester.kind();
        let own = attester.measurement();
        let mut same_image = if kind == TeeKind::InsecureSimulated {
            Policy::insecure_dev([own])
        } else {
            Policy::measurements([kind], [own])
        }
        .map_err(|e| Error::Config(format!("own identity: {e}")))?;
        if kind == TeeKind::Tdx {
            same_image
                .registers
                .insert(TeeKind::Tdx, own_tdx_registers(attester)?);
        }
        if let Some(p) = &admission_policy {
            p.validate()
                .map_err(|e| Error::Config(format!("admission policy: {e}")))?;
            if kind != TeeKind::InsecureSimulated
                && (p.allow_insecure_simulated || p.accepts_kind(TeeKind::InsecureSimulated))
            {
                return Err(Error::Config(format!(
                    "the admission policy admits the INSECURE simulated TEE, but this KDS runs on \
                     {kind}: a forged replica would receive the master secret"
                )));
            }
        }
        let extra_hash = admission_policy.as_ref().map(admission_policy_hash);
        Ok(Admission {
            same_image,
            extra: admission_policy,
            extra_hash,
        })
    }

    /// The policy a replica of this very image satisfies.
    pub fn same_image_policy(&self) -> &Policy {
        &self.same_image
    }

    /// The admission policy in force beyond the same image, if any.
    pub fn admission_policy(&self) -> Option<&Policy> {
        self.extra.as_ref()
    }

    /// [`admission_policy_hash`] of the admission policy, if any (bound into the evidence).
    pub fn admission_policy_hash(&self) -> Option<&[u8; 32]> {
        self.extra_hash.as_ref()
    }

    /// Verifies a peer's evidence for `expected` report data: the same image, or else the
    /// admission policy. The error is the same-image refusal when there is no admission policy
    /// (or when both refuse).
    pub fn check(
        &self,
        evidence: &Evidence,
        expected: &ReportData,
        now: u64,
    ) -> Result<Claims, clave_attest::Error> {
        match verify(evidence, &self.same_image, expected, now) {
            Ok(c) => Ok(c),
            Err(same) => match &self.extra {
                Some(p) => verify(evidence, p, expected, now).map_err(|_| same),
                None => Err(same),
            },
        }
    }
}

/// `rtmr0`..`rtmr2` of this TD, read from its own quote (our own hardware's report: parsing it
/// without the signature check is enough).
fn own_tdx_registers(attester: &dyn Attester) -> Result<BTreeMap<String, Measurement>, Error> {
    let evidence = attester
        .attest(&ReportData([0; 64]))
        .map_err(Error::Attester)?;
    let Evidence::Tdx { quote } = evidence else {
        return Err(Error::Config(
            "the TDX attester produced no TDX quote".into(),
        ));
    };
    let quote = TdxQuote::parse(&quote).map_err(Error::Attester)?;
    Ok(quote
        .rtmrs
        .iter()
        .take(TDX_PINNED_RTMRS)
        .enumerate()
        .map(|(i, r)| (format!("rtmr{i}"), Measurement(r.to_vec())))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clave_attest::InsecureSimulatedAttester;

    fn m(b: u8) -> Measurement {
        Measurement(vec![b; 32])
    }

    /// A KDS that believes it runs on SEV-SNP (its evidence is never checked here).
    struct Snp(InsecureSimulatedAttester);
    impl Attester for Snp {
        fn kind(&self) -> TeeKind {
            TeeKind::SevSnp
        }
        fn attest(&self, rd: &ReportData) -> Result<Evidence, clave_attest::Error> {
            self.0.attest(rd)
        }
        fn measurement(&self) -> Measurement {
            self.0.measurement()
        }
    }

    #[test]
    fn simulated_kds_admits_its_own_measurement_only() {
        let a = InsecureSimulatedAttester::new(m(1)).expect("attester");
        let rule = Admission::new(&a, None).expect("rule");
        let rd = ReportData([3; 64]);
        rule.check(&a.attest(&rd).expect("ev"), &rd, 0)
            .expect("same image");
        let other = InsecureSimulatedAttester::new(m(2)).expect("attester");
        let r = rule.check(&other.attest(&rd).expect("ev"), &rd, 0);
        assert!(
            matches!(r, Err(clave_attest::Error::MeasurementNotAllowed { .. })),
            "{r:?}"
        );
        assert_eq!(rule.admission_policy_hash(), None);
    }

    #[test]
    fn hardware_kds_refuses_an_admission_policy_admitting_the_simulated_tee() {
        let a = Snp(InsecureSimulatedAttester::new(m(1)).expect("attester"));
        let p = Policy::insecure_dev([m(1)]).expect("policy");
        let err = Admission::new(&a, Some(p)).expect_err("refused");
        assert!(err.to_string().contains("INSECURE"), "{err}");
        // Without one, simulated evidence of the same measurement is refused.
        let rule = Admission::new(&a, None).expect("rule");
        let rd = ReportData([3; 64]);
        let r = rule.check(&a.attest(&rd).expect("ev"), &rd, 0);
        assert!(
            matches!(
                r,
                Err(
                    clave_attest::Error::KindNotAccepted(TeeKind::InsecureSimulated)
                        | clave_attest::Error::InsecureNotAllowed
                )
            ),
            "{r:?}"
        );
    }

    #[test]
    fn admission_policy_is_hashed_and_used() {
        let a = InsecureSimulatedAttester::new(m(1)).expect("attester");
        let p = Policy::insecure_dev([m(2)]).expect("policy");
        let rule = Admission::new(&a, Some(p.clone())).expect("rule");
        assert_eq!(
            rule.admission_policy_hash(),
            Some(&admission_policy_hash(&p))
        );
        let rd = ReportData([3; 64]);
        let successor = InsecureSimulatedAttester::new(m(2)).expect("attester");
        rule.check(&successor.attest(&rd).expect("ev"), &rd, 0)
            .expect("admitted by the admission policy");
    }
}
