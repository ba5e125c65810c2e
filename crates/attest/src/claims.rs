//! Claims (RATS "attestation results" before appraisal): what verified evidence says.

use serde::{Deserialize, Serialize};

use crate::types::{Measurement, ReportData, SignerId, Tcb, TeeKind};

/// What a piece of evidence says about its TEE, after its cryptography has been checked.
///
/// [`crate::verify()`] returns claims only once they also satisfy the policy. Fields a format does
/// not have are `None` (or an empty [`Tcb`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Which TEE produced the evidence.
    pub kind: TeeKind,
    /// The launch measurement.
    pub measurement: Measurement,
    /// The image signer, if the format has one.
    pub signer: Option<SignerId>,
    /// The product id, if the format has one.
    pub product_id: Option<u16>,
    /// The image security version (0 where the format has none).
    pub svn: u32,
    /// The platform TCB version.
    pub tcb: Tcb,
    /// Whether the TEE runs in debug mode (never accepted by [`crate::verify()`]).
    pub debug: bool,
    /// The 64 bytes of user data bound into the evidence.
    pub report_data: ReportData,
    /// When the evidence was produced (unix seconds), if the format says.
    pub issued_at: Option<u64>,
    /// `true` for the insecure simulated TEE: these claims prove nothing about any hardware.
    pub insecure: bool,
}
