//! clave-collateral: fetches and caches the endorsements (certificates, CRLs, TCB info) that real TEE
//! evidence is verified against. It never decides trust itself; that is `clave-attest`'s job.
