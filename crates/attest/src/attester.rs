//! The attester role (RATS): something that produces evidence about the TEE it runs in.

use crate::Error;
use crate::evidence::Evidence;
use crate::types::{Measurement, ReportData, TeeKind};

/// Produces evidence binding caller-chosen report data to the TEE it runs in.
pub trait Attester {
    /// The kind of TEE this attester speaks for.
    fn kind(&self) -> TeeKind;

    /// Produces evidence whose report data is exactly `report_data`.
    fn attest(&self, report_data: &ReportData) -> Result<Evidence, Error>;

    /// The measurement of the running workload, as its evidence will state it.
    fn measurement(&self) -> Measurement;
}
