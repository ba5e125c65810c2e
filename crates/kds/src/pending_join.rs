//! Replica join, joiner side: [`PendingJoin`] (prepare a request, verify the existing replica's
//! answer, open the KDS), and [`ReplicaPeer`], the existing replica as the joiner sees it.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use clave_attest::Evidence;
use clave_proto::MasterSecret;
use clave_proto::derive::identity_key;
use clave_proto::kds_api::{
    self, LogEvent, MasterSecretOrigin, NonceResponse, REPLICA_HPKE_INFO, ReplicaJoinRequest,
    ReplicaJoinResponse,
};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::Error;
use crate::admission::Admission;
use crate::clock::ClockFloor;
use crate::kds::{
    Kds, KdsAttester, KdsConfig, KdsRng, KdsSealer, MASTER_SEALED_FILE, log_entry, store_sealed_new,
};
use crate::log::ReleaseLog;

impl Kds {
    /// Joins an existing replica through `peer` (nonce, join request, verification of the
    /// peer's answer) and opens the resulting KDS in `dir`, which must not hold a master secret.
    pub fn join(
        peer: &dyn ReplicaPeer,
        dir: &Path,
        sealer: KdsSealer,
        attester: KdsAttester,
        config: KdsConfig,
        now: u64,
        rng: impl CryptoRng + Send + 'static,
    ) -> Result<Kds, Error> {
        let nonce = peer.replica_nonce(now)?;
        let pending = PendingJoin::new(dir, sealer, attester, config, nonce.nonce, rng)?;
        let response = peer.join(pending.request(), now)?;
        pending.finish(&response, now)
    }

    /// Completes a join from the peer's response (see [`PendingJoin::finish`]).
    pub fn join_from(
        pending: PendingJoin,
        response: &ReplicaJoinResponse,
        now: u64,
    ) -> Result<Kds, Error> {
        pending.finish(response, now)
    }
}

/// The existing replica as the joiner sees it (in process, or over HTTP in another crate).
pub trait ReplicaPeer {
    /// `POST /v1/kds/replica/nonce`.
    fn replica_nonce(&self, now: u64) -> Result<NonceResponse, Error>;
    /// `POST /v1/kds/replica/join`.
    fn join(&self, req: &ReplicaJoinRequest, now: u64) -> Result<ReplicaJoinResponse, Error>;
}

impl ReplicaPeer for Kds {
    fn replica_nonce(&self, now: u64) -> Result<NonceResponse, Error> {
        Ok(Kds::replica_nonce(self, now))
    }

    fn join(&self, req: &ReplicaJoinRequest, now: u64) -> Result<ReplicaJoinResponse, Error> {
        self.admit_replica(req, now)
    }
}

/// A replica join in progress (joiner side): holds the ephemeral key and the joiner's nonce
/// until the existing replica answers.
pub struct PendingJoin {
    dir: PathBuf,
    /// `None`: keep the master secret in memory only.
    sealer: Option<KdsSealer>,
    attester: KdsAttester,
    admission: Admission,
    config: KdsConfig,
    rng: KdsRng,
    ephemeral_sk: Zeroizing<[u8; 32]>,
    request: ReplicaJoinRequest,
}

impl fmt::Debug for PendingJoin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingJoin")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl PendingJoin {
    /// Prepares a join: refuses a `dir` that already holds a master secret, draws an ephemeral
    /// X25519 key and a nonce of its own, and attests to `(ephemeral pk, peer_nonce)`. The
    /// master secret received is stored sealed with `sealer`.
    pub fn new(
        dir: &Path,
        sealer: KdsSealer,
        attester: KdsAttester,
        config: KdsConfig,
        peer_nonce: [u8; 32],
        rng: impl CryptoRng + Send + 'static,
    ) -> Result<PendingJoin, Error> {
        Self::prepare(
            dir,
            Some(sealer),
            attester,
            config,
            peer_nonce,
            Box::new(rng),
        )
    }

    /// Like [`PendingJoin::new`], for a KDS without a sealing key: the master secret received
    /// is kept in memory only ([`crate::start`]), and its origin is inherited from the peer.
    pub fn new_in_memory(
        dir: &Path,
        attester: KdsAttester,
        config: KdsConfig,
        peer_nonce: [u8; 32],
        rng: impl CryptoRng + Send + 'static,
    ) -> Result<PendingJoin, Error> {
        Self::prepare(dir, None, attester, config, peer_nonce, Box::new(rng))
    }

    fn prepare(
        dir: &Path,
        sealer: Option<KdsSealer>,
        attester: KdsAttester,
        config: KdsConfig,
        peer_nonce: [u8; 32],
        mut rng: KdsRng,
    ) -> Result<PendingJoin, Error> {
        config.validate()?;
        let admission = Admission::new(attester.as_ref(), config.admission_policy.clone())?;
        let path = dir.join(MASTER_SEALED_FILE);
        if path.exists() {
            return Err(Error::AlreadyInitialised(path));
        }
        let mut ephemeral_sk = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(ephemeral_sk.as_mut());
        let ephemeral_pk =
            kds_api::x25519_public_key(&ephemeral_sk).map_err(|_| Error::BadEphemeralKey)?;
        let mut joiner_nonce = [0u8; 32];
        rng.fill_bytes(&mut joiner_nonce);
        let rd = kds_api::replica_join_report_data(&ephemeral_pk, &peer_nonce);
        let evidence = attester.attest(&rd).map_err(Error::Attester)?;
        Ok(PendingJoin {
            dir: dir.to_path_buf(),
            sealer,
            attester,
            admission,
            config,
            rng,
            ephemeral_sk,
            request: ReplicaJoinRequest {
                nonce: peer_nonce,
                evidence: evidence.to_bytes(),
                ephemeral_public_key: ephemeral_pk,
                joiner_nonce,
            },
        })
    }

    /// The request to send to the existing replica.
    pub fn request(&self) -> &ReplicaJoinRequest {
        &self.request
    }

    /// Verifies the existing replica's evidence against this KDS's own admission rule (the
    /// same TEE kind and measurement as this KDS, or its admission policy; the evidence must bind
    /// the peer's identity key, our nonce, the same admission policy hash as ours and the origin
    /// of its master secret), opens the master secret, checks that it derives the attested
    /// identity, stores it sealed (or, joining in memory, keeps it and inherits its origin) and
    /// opens the KDS. Nothing the host configures can make a KDS on hardware accept a master
    /// secret from a simulated or differently measured peer. A KDS that keeps its master secret
    /// sealed refuses one that came from an external key source (once sealed, it would no longer
    /// say so).
    pub fn finish(mut self, response: &ReplicaJoinResponse, now: u64) -> Result<Kds, Error> {
        let evidence = Evidence::from_bytes(&response.evidence).map_err(Error::PeerAttestation)?;
        let origin = response.master_secret_origin;
        let expected = kds_api::kds_attestation_report_data_bound(
            &response.identity_public_key,
            &self.request.joiner_nonce,
            self.admission.admission_policy_hash(),
            origin,
        );
        let claims = self
            .admission
            .check(&evidence, &expected, now)
            .map_err(Error::PeerAttestation)?;
        let plain = kds_api::open_from_kds(
            &self.ephemeral_sk,
            REPLICA_HPKE_INFO,
            &response.identity_public_key,
            &response.enc,
            &response.sealed_master,
        )
        .map_err(|_| Error::MalformedJoinResponse)?;
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| Error::MalformedJoinResponse)?;
        let master = MasterSecret::from_bytes(bytes);
        let derived_pk = identity_key(&master)
            .map_err(|e| Error::Proto(e.to_string()))?
            .verifying_key()
            .to_bytes();
        if derived_pk != response.identity_public_key {
            return Err(Error::PeerIdentityMismatch);
        }
        let Some(sealer) = self.sealer else {
            let kds = Kds::open_in_memory(
                &self.dir,
                master,
                origin,
                self.attester,
                self.config,
                now,
                self.rng,
            )?;
            let mut entry = log_entry(now, LogEvent::Joined);
            entry.tee_kind = Some(claims.kind.as_str().to_owned());
            entry.measurement = Some(claims.measurement.to_hex());
            kds.log.append(&entry)?;
            tracing::info!(dir = %self.dir.display(), "KDS joined an existing replica (master secret in memory only)");
            return Ok(kds);
        };
        if origin != MasterSecretOrigin::Tee {
            return Err(Error::ExternalMasterRefused);
        }
        fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let clock = ClockFloor::open(
            &self.dir,
            sealer.as_ref(),
            false,
            now,
            self.config.max_clock_regression_secs,
            &mut *self.rng,
        )?;
        let blob = sealer.seal(master.expose_secret(), &mut *self.rng)?;
        store_sealed_new(&self.dir.join(MASTER_SEALED_FILE), &blob)?;
        let log = ReleaseLog::open(&self.dir)?;
        let mut entry = log_entry(now, LogEvent::Joined);
        entry.tee_kind = Some(claims.kind.as_str().to_owned());
        entry.measurement = Some(claims.measurement.to_hex());
        log.append(&entry)?;
        tracing::info!(dir = %self.dir.display(), "KDS joined an existing replica");
        Kds::assemble(
            &self.dir,
            (master, MasterSecretOrigin::Tee),
            self.attester,
            sealer,
            clock,
            self.admission,
            self.config,
            log,
            self.rng,
        )
    }
}
