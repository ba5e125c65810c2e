//! The KDS library: one [`Kds`] per data directory, shared by the in-process API and the HTTP
//! service.

use std::fmt;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use clave_attest::{Attester, Evidence, Policy, verify, verify_evidence};
use clave_proto::bundle::KeyBundle;
use clave_proto::derive::{derive_key, identity_key};
use clave_proto::kds_api::{
    self, AttestationResponse, KeysResponse, LogEvent, MAX_CALLER_NONCE_LEN, MasterSecretOrigin,
    NonceResponse, Outcome, RELEASE_HPKE_INFO, REPLICA_HPKE_INFO, ReleaseLogEntry, ReleaseRequest,
    ReleaseResponse, ReplicaJoinRequest, ReplicaJoinResponse,
};
use clave_proto::signed::SignedObject;
use clave_proto::spec::{KeyPurpose, KeySpec};
use clave_proto::{MasterSecret, SpecId};
use ed25519_dalek::SigningKey;
use rand_core::CryptoRng;

use crate::Error;
use crate::admission::Admission;
use crate::clock::ClockFloor;
use crate::log::ReleaseLog;
use crate::nonce::{NoncePurpose, NonceStore};
use crate::seal::{MasterKeyedSealer, Sealer};

/// File name of the sealed master secret inside the KDS data directory.
pub const MASTER_SEALED_FILE: &str = "master.sealed";

/// An attester the KDS can share between threads.
pub type KdsAttester = Box<dyn Attester + Send + Sync>;
/// The sealer of a KDS.
pub type KdsSealer = Box<dyn Sealer>;
/// The randomness source a KDS keeps (nonces, HPKE, sealing).
pub type KdsRng = Box<dyn CryptoRng + Send>;

/// What a KDS serves and whom it admits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KdsConfig {
    /// Policy of the code key spec (who may open sealed code: the engines).
    pub code_policy: Policy,
    /// Policy of the invoke key specs (who may open invoke requests: the engines).
    pub invoke_policy: Policy,
    /// An extra policy under which replicas that do **not** run this KDS's own measurement are
    /// admitted (both directions of a join; an upgrade path). `None` (the default): only the
    /// same measurement on the same TEE kind ([`crate::admission`]). When set, its hash is bound
    /// into every attestation of this KDS and the policy is published with it, so clients see it
    /// and can refuse it; on hardware it may not admit the simulated TEE.
    pub admission_policy: Option<Policy>,
    /// Length of an invoke key epoch in seconds (`epoch = now / epoch_seconds`).
    pub epoch_seconds: u64,
    /// How many past invoke epochs are still released (grace window for in-flight requests).
    pub grace_epochs: u64,
    /// Lifetime of a release or join nonce in seconds.
    pub nonce_ttl_seconds: u64,
    /// How many used nonces one replica remembers until they expire (when full, releases are
    /// refused with `NonceStoreFull` until some expire: a used nonce is never forgotten early).
    pub nonce_capacity: usize,
    /// How far, in seconds, the clock may lie behind the latest time this KDS acted at (sealed
    /// high-water mark, [`crate::clock`]) before it refuses to start, release or admit.
    pub max_clock_regression_secs: u64,
}

impl KdsConfig {
    /// Default invoke epoch: one day.
    pub const DEFAULT_EPOCH_SECONDS: u64 = 86_400;
    /// Default nonce lifetime: one minute.
    pub const DEFAULT_NONCE_TTL_SECONDS: u64 = 60;
    /// Default nonce store size.
    pub const DEFAULT_NONCE_CAPACITY: usize = 4096;
    /// Default allowed clock regression: two minutes (an NTP step, a VM migration).
    pub const DEFAULT_MAX_CLOCK_REGRESSION_SECS: u64 = 120;

    /// A configuration with default epoch (1 day), grace (1 epoch) and nonce settings, admitting
    /// only replicas of the KDS's own measurement.
    pub fn new(code_policy: Policy, invoke_policy: Policy) -> Self {
        KdsConfig {
            code_policy,
            invoke_policy,
            admission_policy: None,
            epoch_seconds: Self::DEFAULT_EPOCH_SECONDS,
            grace_epochs: 1,
            nonce_ttl_seconds: Self::DEFAULT_NONCE_TTL_SECONDS,
            nonce_capacity: Self::DEFAULT_NONCE_CAPACITY,
            max_clock_regression_secs: Self::DEFAULT_MAX_CLOCK_REGRESSION_SECS,
        }
    }

    /// Checks the policies and numbers.
    pub fn validate(&self) -> Result<(), Error> {
        let admission = self
            .admission_policy
            .iter()
            .map(|p| ("admission_policy", p));
        for (name, p) in [
            ("code_policy", &self.code_policy),
            ("invoke_policy", &self.invoke_policy),
        ]
        .into_iter()
        .chain(admission)
        {
            p.validate()
                .map_err(|e| Error::Config(format!("{name}: {e}")))?;
        }
        if self.epoch_seconds == 0 {
            return Err(Error::Config("epoch_seconds must be positive".into()));
        }
        if self.nonce_ttl_seconds == 0 || self.nonce_capacity == 0 {
            return Err(Error::Config(
                "nonce_ttl_seconds and nonce_capacity must be positive".into(),
            ));
        }
        Ok(())
    }

    /// The code key spec (epoch 0).
    pub fn code_spec(&self) -> KeySpec {
        KeySpec::new(KeyPurpose::Code, self.code_policy.clone(), 0)
    }

    /// The invoke key spec of `epoch`.
    pub fn invoke_spec(&self, epoch: u64) -> KeySpec {
        KeySpec::new(KeyPurpose::Invoke, self.invoke_policy.clone(), epoch)
    }

    /// The invoke epoch at `now`.
    pub fn epoch_at(&self, now: u64) -> u64 {
        now / self.epoch_seconds.max(1)
    }

    /// The specs whose keys are released at `now`: the code key, the invoke keys of the
    /// `grace_epochs` previous epochs, the current one and the next one.
    pub fn served_specs(&self, now: u64) -> Vec<KeySpec> {
        let e = self.epoch_at(now);
        let mut specs = vec![self.code_spec()];
        for epoch in e.saturating_sub(self.grace_epochs)..=e.saturating_add(1) {
            specs.push(self.invoke_spec(epoch));
        }
        specs
    }

    /// The unsigned bundles published at `now`: the code key (valid for the current and next
    /// epoch, re-signed every epoch), then the invoke keys of the current and next epoch (each
    /// valid during its epoch).
    fn bundle_plan(&self, now: u64) -> Vec<(KeySpec, u64, u64)> {
        let e = self.epoch_at(now);
        let len = self.epoch_seconds.max(1);
        let start = |epoch: u64| epoch.saturating_mul(len);
        let end = |epoch: u64| start(epoch.saturating_add(1)).saturating_sub(1);
        vec![
            (self.code_spec(), start(e), end(e.saturating_add(1))),
            (self.invoke_spec(e), start(e), end(e)),
            (
                self.invoke_spec(e.saturating_add(1)),
                start(e.saturating_add(1)),
                end(e.saturating_add(1)),
            ),
        ]
    }
}

/// The Key Derivation Service: master secret, identity, bundles, nonces, key release, replica
/// admission and the release log. `Send + Sync`; every method takes `&self`.
pub struct Kds {
    dir: PathBuf,
    master: MasterSecret,
    origin: MasterSecretOrigin,
    identity: SigningKey,
    attester: KdsAttester,
    sealer: KdsSealer,
    clock: ClockFloor,
    admission: Admission,
    config: KdsConfig,
    nonces: Mutex<NonceStore>,
    pub(crate) log: ReleaseLog,
    rng: Mutex<KdsRng>,
    /// The last signed bundles and the plan they were made for: `bundles` is a pure function
    /// of the plan, and every `GET /v1/keys` (clients, engines, the gateway's key configs)
    /// would otherwise derive three keys and sign three payloads again.
    signed_bundles: Mutex<Option<BundleCache>>,
}

/// [`Kds::bundles`]' plan and what it produced.
type BundleCache = (Vec<(KeySpec, u64, u64)>, Vec<SignedObject>);

impl fmt::Debug for Kds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kds")
            .field("dir", &self.dir)
            .field("identity", &hex::encode(self.identity_public_key()))
            .field("tee_kind", &self.attester.kind())
            .finish_non_exhaustive()
    }
}

/// The key that authenticates nonces: every replica holding `master` derives the same one, so any
/// replica accepts a nonce that another issued (see `nonce.rs`).
fn nonce_key(master: &MasterSecret) -> Result<zeroize::Zeroizing<[u8; 32]>, Error> {
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(None, master.expose_secret());
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    hk.expand(b"clave/v1/kds-nonce-key", key.as_mut_slice())
        .map_err(|_| Error::Internal("nonce key derivation"))?;
    Ok(key)
}

/// Reads the sealed master secret, or `None` if the file does not exist. Any other problem is an
/// error; the file is never touched.
fn load_master(path: &Path, sealer: &dyn Sealer) -> Result<Option<MasterSecret>, Error> {
    let blob = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let plain = sealer.unseal(&blob)?;
    let bytes: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| Error::MasterSecretLength(plain.len()))?;
    Ok(Some(MasterSecret::from_bytes(bytes)))
}

/// Writes a sealed blob to `path` without ever replacing an existing file: temp file, fsync,
/// hard link to the final name (fails if it exists), remove the temp file, fsync the directory.
pub(crate) fn store_sealed_new(path: &Path, blob: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("sealed.tmp");
    {
        let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(blob).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    }
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::AlreadyInitialised(path.to_path_buf()));
        }
        Err(e) => return Err(Error::io(path, e)),
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Records in `entry` what parsed `evidence` says about the requester before any decision: its
/// TEE kind, and its measurement if the evidence is genuinely signed (worth recording even if
/// the policy then refuses it).
fn note_evidence<E>(entry: &mut ReleaseLogEntry, evidence: &Result<Evidence, E>) {
    if let Ok(ev) = evidence {
        entry.tee_kind = Some(ev.kind().as_str().to_owned());
        if let Ok(claims) = verify_evidence(ev) {
            entry.measurement = Some(claims.measurement.to_hex());
        }
    }
}

pub(crate) fn log_entry(time: u64, event: LogEvent) -> ReleaseLogEntry {
    ReleaseLogEntry {
        time,
        event,
        spec_id: None,
        tee_kind: None,
        measurement: None,
        outcome: Outcome::Granted,
        reason: None,
    }
}

impl Kds {
    /// Opens the KDS in `dir`: unseals `dir/master.sealed`, or, if it does not exist, creates a
    /// fresh master secret (genesis) and stores it sealed. A sealed file that exists but cannot
    /// be opened (truncated, corrupt, other measurement or sealer) is an error and is left as is.
    pub fn open(
        dir: &Path,
        sealer: KdsSealer,
        attester: KdsAttester,
        config: KdsConfig,
        now: u64,
        rng: impl CryptoRng + Send + 'static,
    ) -> Result<Kds, Error> {
        config.validate()?;
        let admission = Admission::new(attester.as_ref(), config.admission_policy.clone())?;
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut rng: KdsRng = Box::new(rng);
        let path = dir.join(MASTER_SEALED_FILE);
        let log = ReleaseLog::open(dir)?;
        let existing = load_master(&path, sealer.as_ref())?;
        let clock = ClockFloor::open(
            dir,
            sealer.as_ref(),
            existing.is_some(),
            now,
            config.max_clock_regression_secs,
            &mut *rng,
        )?;
        let master = match existing {
            Some(m) => m,
            None => {
                let master = MasterSecret::generate(&mut rng);
                let blob = sealer.seal(master.expose_secret(), &mut *rng)?;
                store_sealed_new(&path, &blob)?;
                log.append(&log_entry(now, LogEvent::Genesis))?;
                tracing::info!(dir = %dir.display(), "KDS genesis: new master secret sealed");
                master
            }
        };
        Self::assemble(
            dir,
            (master, MasterSecretOrigin::Tee),
            attester,
            sealer,
            clock,
            admission,
            config,
            log,
            rng,
        )
    }

    /// Opens a KDS whose master secret is kept in memory only (never written; see
    /// [`crate::start`]): its release log and clock floor live in `dir`, the clock floor sealed
    /// with [`MasterKeyedSealer`]. Refuses a `dir` that holds a sealed master secret.
    pub(crate) fn open_in_memory(
        dir: &Path,
        master: MasterSecret,
        origin: MasterSecretOrigin,
        attester: KdsAttester,
        config: KdsConfig,
        now: u64,
        mut rng: KdsRng,
    ) -> Result<Kds, Error> {
        config.validate()?;
        let admission = Admission::new(attester.as_ref(), config.admission_policy.clone())?;
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(MASTER_SEALED_FILE);
        if path.exists() {
            return Err(Error::AlreadyInitialised(path));
        }
        let log = ReleaseLog::open(dir)?;
        let sealer: KdsSealer = Box::new(MasterKeyedSealer::new(
            &master,
            attester.measurement().as_bytes(),
        )?);
        let clock = ClockFloor::open(
            dir,
            sealer.as_ref(),
            false,
            now,
            config.max_clock_regression_secs,
            &mut *rng,
        )?;
        if origin == MasterSecretOrigin::Tee {
            log.append(&log_entry(now, LogEvent::Genesis))?;
        }
        Self::assemble(
            dir,
            (master, origin),
            attester,
            sealer,
            clock,
            admission,
            config,
            log,
            rng,
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn assemble(
        dir: &Path,
        (master, origin): (MasterSecret, MasterSecretOrigin),
        attester: KdsAttester,
        sealer: KdsSealer,
        clock: ClockFloor,
        admission: Admission,
        config: KdsConfig,
        log: ReleaseLog,
        rng: KdsRng,
    ) -> Result<Kds, Error> {
        let identity = identity_key(&master).map_err(|e| Error::Proto(e.to_string()))?;
        let nonce_key = nonce_key(&master)?;
        Ok(Kds {
            dir: dir.to_path_buf(),
            master,
            origin,
            identity,
            attester,
            sealer,
            clock,
            admission,
            nonces: Mutex::new(NonceStore::new(
                nonce_key,
                config.nonce_capacity,
                config.nonce_ttl_seconds,
            )),
            config,
            log,
            rng: Mutex::new(rng),
            signed_bundles: Mutex::new(None),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &KdsConfig {
        &self.config
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The Ed25519 identity public key (derived from the master secret).
    pub fn identity_public_key(&self) -> [u8; 32] {
        self.identity.verifying_key().to_bytes()
    }

    /// Checks `now` against the clock floor and raises it ([`crate::clock`]).
    fn observe_clock(&self, now: u64) -> Result<(), Error> {
        self.with_rng(|rng| self.clock.observe(now, self.sealer.as_ref(), &mut **rng))
    }

    fn with_rng<T>(&self, f: impl FnOnce(&mut KdsRng) -> T) -> T {
        let mut guard = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    fn draw_nonce_random(&self) -> [u8; 11] {
        let mut n = [0u8; 11];
        self.with_rng(|r| r.fill_bytes(&mut n));
        n
    }

    /// Where the master secret came from (bound into every attestation).
    pub fn master_secret_origin(&self) -> MasterSecretOrigin {
        self.origin
    }

    /// The replica admission rule in force.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// Evidence of this KDS binding its identity key, the caller's nonce (1 to 64 bytes) and
    /// the hash of its admission policy, if any: report data =
    /// [`kds_api::kds_attestation_report_data_with`]. The admission policy travels with it.
    pub fn attestation(&self, nonce: &[u8]) -> Result<AttestationResponse, Error> {
        if nonce.is_empty() || nonce.len() > MAX_CALLER_NONCE_LEN {
            return Err(Error::BadCallerNonce);
        }
        let pk = self.identity_public_key();
        let evidence = self.own_evidence(&pk, nonce)?;
        Ok(AttestationResponse {
            evidence: evidence.to_bytes(),
            identity_public_key: pk,
            nonce: nonce.to_vec(),
            admission_policy: self.admission.admission_policy().cloned(),
            master_secret_origin: self.origin,
        })
    }

    fn own_evidence(&self, pk: &[u8; 32], nonce: &[u8]) -> Result<Evidence, Error> {
        let rd = kds_api::kds_attestation_report_data_bound(
            pk,
            nonce,
            self.admission.admission_policy_hash(),
            self.origin,
        );
        self.attester.attest(&rd).map_err(Error::Attester)
    }

    /// The signed bundles at `now` (code key; invoke keys of the current and next epoch). A pure
    /// function of the master secret, the configuration and `now`: replicas agree byte for byte.
    pub fn bundles(&self, now: u64) -> Result<Vec<SignedObject>, Error> {
        let plan = self.config.bundle_plan(now);
        if let Some((cached_plan, signed)) = &*self
            .signed_bundles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            && *cached_plan == plan
        {
            return Ok(signed.clone());
        }
        let signed = plan
            .iter()
            .map(|(spec, not_before, not_after)| {
                let derived =
                    derive_key(&self.master, spec).map_err(|e| Error::Proto(e.to_string()))?;
                Ok(KeyBundle {
                    spec: spec.clone(),
                    key_config: derived.key_config,
                    not_before: *not_before,
                    not_after: *not_after,
                }
                .sign(&self.identity))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        *self
            .signed_bundles
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((plan, signed.clone()));
        Ok(signed)
    }

    /// `GET /v1/kds/keys`: the identity key, the epoch and the signed bundles at `now`.
    pub fn keys(&self, now: u64) -> Result<KeysResponse, Error> {
        Ok(KeysResponse {
            identity_public_key: self.identity_public_key(),
            epoch: self.config.epoch_at(now),
            epoch_seconds: self.config.epoch_seconds,
            bundles: self.bundles(now)?,
        })
    }

    fn issue_nonce(&self, purpose: NoncePurpose, now: u64) -> NonceResponse {
        let random = self.draw_nonce_random();
        let (nonce, expires_at) = self
            .nonces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .issue(random, purpose, now);
        NonceResponse { nonce, expires_at }
    }

    fn consume_nonce(
        &self,
        nonce: &[u8; 32],
        purpose: NoncePurpose,
        now: u64,
    ) -> Result<(), Error> {
        self.nonces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .consume(nonce, purpose, now)
    }

    /// A fresh single-use nonce for a key release.
    pub fn new_nonce(&self, now: u64) -> NonceResponse {
        self.issue_nonce(NoncePurpose::Release, now)
    }

    /// A fresh single-use nonce for a replica join.
    pub fn replica_nonce(&self, now: u64) -> NonceResponse {
        self.issue_nonce(NoncePurpose::Replica, now)
    }

    /// Appends an entry with the outcome of `result`; a grant that cannot be logged is not
    /// granted (the append error is returned), while a refusal stays a refusal whether or not
    /// its entry could be appended (an append failure is only traced).
    fn record<T>(
        &self,
        mut entry: ReleaseLogEntry,
        result: &Result<T, Error>,
    ) -> Result<(), Error> {
        match result {
            Ok(_) => {
                entry.outcome = Outcome::Granted;
                self.log.append(&entry)
            }
            Err(e) => {
                entry.outcome = Outcome::Refused;
                entry.reason = Some(e.slug().to_owned());
                if let Err(log_err) = self.log.append(&entry) {
                    tracing::error!(error = %log_err, "release log append failed");
                }
                Ok(())
            }
        }
    }

    /// Key release: verifies `req` (nonce issued here, unexpired and unused — consumed in any
    /// case; a spec this KDS serves at `now`; evidence satisfying the spec's policy with report
    /// data [`kds_api::release_report_data`]`(ephemeral pk, nonce)`) and returns the derived
    /// private key HPKE-sealed to the ephemeral key with the spec id as AAD. Every grant and
    /// refusal is appended to the release log.
    pub fn release(&self, req: &ReleaseRequest, now: u64) -> Result<ReleaseResponse, Error> {
        let spec_id = SpecId::of_bytes(&req.spec);
        let mut entry = log_entry(now, LogEvent::KeyRelease);
        entry.spec_id = Some(spec_id.to_hex());
        let result = self.release_inner(req, &spec_id, now, &mut entry);
        self.record(entry, &result)?;
        if let Err(e) = &result {
            tracing::info!(spec_id = %spec_id.to_hex(), reason = e.slug(), "key release refused");
        }
        result
    }

    fn release_inner(
        &self,
        req: &ReleaseRequest,
        spec_id: &SpecId,
        now: u64,
        entry: &mut ReleaseLogEntry,
    ) -> Result<ReleaseResponse, Error> {
        // Parse the evidence first only to learn what to log; the nonce is consumed before any
        // decision so that it is single-use whatever happens.
        let evidence = Evidence::from_bytes(&req.evidence);
        note_evidence(entry, &evidence);
        self.consume_nonce(&req.nonce, NoncePurpose::Release, now)?;
        self.observe_clock(now)?;
        let spec = KeySpec::from_bytes(&req.spec).map_err(|_| Error::MalformedSpec)?;
        if !self
            .config
            .served_specs(now)
            .iter()
            .any(|s| s.to_bytes() == req.spec)
        {
            return Err(Error::UnknownSpec);
        }
        let evidence = evidence.map_err(Error::MalformedEvidence)?;
        let expected = kds_api::release_report_data(&req.ephemeral_public_key, &req.nonce);
        let claims = verify(&evidence, &spec.policy, &expected, now).map_err(Error::Attestation)?;
        entry.tee_kind = Some(claims.kind.as_str().to_owned());
        entry.measurement = Some(claims.measurement.to_hex());

        let derived = derive_key(&self.master, &spec).map_err(|e| Error::Proto(e.to_string()))?;
        let private = derived.private.to_bytes();
        let (enc, sealed_key) = self
            .with_rng(|rng| {
                kds_api::seal_to_ephemeral(
                    &req.ephemeral_public_key,
                    RELEASE_HPKE_INFO,
                    spec_id.as_bytes(),
                    &private,
                    rng,
                )
            })
            .map_err(|_| Error::BadEphemeralKey)?;
        Ok(ReleaseResponse {
            spec_id: *spec_id.as_bytes(),
            enc,
            sealed_key,
        })
    }

    /// Replica admission (existing replica side): verifies the joiner's evidence against the
    /// admission rule ([`crate::admission`]: same TEE kind and measurement, or the admission
    /// policy) with report data [`kds_api::replica_join_report_data`]`(ephemeral pk, nonce)` (the
    /// nonce from [`Kds::replica_nonce`], consumed in any case), then returns the master secret
    /// HPKE-sealed to the joiner's ephemeral key (AAD = this KDS's identity key) together with
    /// this KDS's evidence binding its identity and the joiner's nonce. Logged like a release.
    pub fn admit_replica(
        &self,
        req: &ReplicaJoinRequest,
        now: u64,
    ) -> Result<ReplicaJoinResponse, Error> {
        let mut entry = log_entry(now, LogEvent::ReplicaJoin);
        let result = self.admit_inner(req, now, &mut entry);
        self.record(entry, &result)?;
        if let Err(e) = &result {
            tracing::warn!(reason = e.slug(), "replica join refused");
        }
        result
    }

    fn admit_inner(
        &self,
        req: &ReplicaJoinRequest,
        now: u64,
        entry: &mut ReleaseLogEntry,
    ) -> Result<ReplicaJoinResponse, Error> {
        let evidence = Evidence::from_bytes(&req.evidence);
        note_evidence(entry, &evidence);
        self.consume_nonce(&req.nonce, NoncePurpose::Replica, now)?;
        self.observe_clock(now)?;
        let evidence = evidence.map_err(Error::MalformedEvidence)?;
        let expected = kds_api::replica_join_report_data(&req.ephemeral_public_key, &req.nonce);
        let claims = self
            .admission
            .check(&evidence, &expected, now)
            .map_err(Error::Attestation)?;
        entry.tee_kind = Some(claims.kind.as_str().to_owned());
        entry.measurement = Some(claims.measurement.to_hex());

        let pk = self.identity_public_key();
        let own = self.own_evidence(&pk, &req.joiner_nonce)?;
        let (enc, sealed_master) = self
            .with_rng(|rng| {
                kds_api::seal_to_ephemeral(
                    &req.ephemeral_public_key,
                    REPLICA_HPKE_INFO,
                    &pk,
                    self.master.expose_secret(),
                    rng,
                )
            })
            .map_err(|_| Error::BadEphemeralKey)?;
        Ok(ReplicaJoinResponse {
            evidence: own.to_bytes(),
            identity_public_key: pk,
            enc,
            sealed_master,
            master_secret_origin: self.origin,
        })
    }

    /// The release log, oldest first.
    pub fn release_log(&self) -> Result<Vec<ReleaseLogEntry>, Error> {
        self.log.read_all()
    }
}

#[cfg(test)]
mod tests;
