//! `clave kds`: the key distribution service as its own process (the joiner's side of a replica
//! join is `clave_kds::join_client`).

use std::net::SocketAddr;
use std::sync::Arc;

use clave_attest::{InsecureSimulatedAttester, Policy};
use clave_kds::{InsecureSimulatedSealer, KdsConfig};

use crate::config::one_line;
use crate::output::{CliError, Out};
use crate::platform::{dev_engine_measurement, dev_kds_measurement};

#[cfg(not(feature = "configfs-tsm"))]
use super::SIMULATED_REFUSED;
use super::{
    ADMISSION_POLICY_FILE, CODE_POLICY_FILE, INSECURE_BANNER, INVOKE_POLICY_FILE, KdsArgs,
    ServerFile, announce, base, bind, failed, now, read_policy, rng, shutdown_signal,
};

impl From<clave_kds::JoinError> for CliError {
    fn from(e: clave_kds::JoinError) -> Self {
        CliError::failed(one_line(&e.to_string()))
    }
}

// ---------------------------------------------------------------------------------------------
// clave kds

/// `clave kds`: open (or join, or create) the KDS and serve its API until SIGINT/SIGTERM.
pub(crate) async fn kds(args: KdsArgs, out: &Out) -> Result<(), CliError> {
    let file = ServerFile::load(args.config.as_deref())?.kds;
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 7000)));
    let data_dir = args.data_dir.or(file.data_dir).ok_or_else(|| {
        CliError::usage("give the KDS a data directory: --data-dir DIR (or CLAVE_KDS_DATA_DIR)")
    })?;
    let join = args.join.or(file.join);
    let peers = args.peers.or(file.peers);
    if join.is_some() && peers.is_some() {
        return Err(CliError::usage("give --join or --peers, not both"));
    }
    let simulated = args
        .insecure_simulated_tee
        .or(file.insecure_simulated_tee)
        .unwrap_or(false);
    // Fail early (before touching the data directory) when no TEE is usable.
    let (tee, plan) = {
        let (sealer, attester) = kds_parts(simulated)?;
        let source = match args.master_secret_source {
            Some(s) => Some(s),
            None => file
                .master_secret_source
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(CliError::usage)?,
        };
        let plan = clave_kds::plan_start(&clave_kds::start::StartSituation {
            tee: attester.kind(),
            can_seal: sealer.is_some(),
            source,
            has_sealed_master: data_dir.join(clave_kds::MASTER_SEALED_FILE).exists(),
            peers: match (&join, &peers) {
                (Some(_), _) => clave_kds::PeerHint::Join,
                (None, Some(_)) => clave_kds::PeerHint::Peers,
                (None, None) => clave_kds::PeerHint::None,
            },
        })
        .map_err(|e| CliError::usage(e.to_string()))?;
        if simulated {
            out.insecure(&format!("clave kds: {INSECURE_BANNER}"));
        }
        if let clave_kds::StartPlan::External(src) = &plan {
            out.warn(&format!(
                "clave kds: the master secret is read from an external key source ({src}): \
whoever provides it can derive every key of this platform. Every attestation of this KDS says so, \
and clients refuse it unless they pass --accept-external-master-secret."
            ));
        }
        let tee = if simulated {
            "INSECURE simulated TEE".to_owned()
        } else {
            format!("TEE {}", attester.kind())
        };
        (tee, plan)
    };
    let engine_m = dev_engine_measurement();
    let policy_dir = args.policy_dir.or(file.policy_dir);
    if !simulated && policy_dir.is_none() {
        return Err(CliError::usage(
            "a KDS on hardware needs the engines' policies: --policy-dir DIR with code.json and invoke.json",
        ));
    }
    let config = match policy_dir {
        Some(dir) => {
            let mut config = KdsConfig::new(
                read_policy(&dir.join(CODE_POLICY_FILE), "code")?,
                read_policy(&dir.join(INVOKE_POLICY_FILE), "invoke")?,
            );
            if dir.join(ADMISSION_POLICY_FILE).exists() {
                let p = read_policy(&dir.join(ADMISSION_POLICY_FILE), "KDS admission")?;
                tracing::warn!(
                    hash = %hex::encode(clave_proto::kds_api::admission_policy_hash(&p)),
                    "KDS admission policy in force: replicas outside this KDS's own measurement \
                     are admitted under it; clients see its hash and must pin it"
                );
                config.admission_policy = Some(p);
            }
            config
        }
        None => {
            let engines = Policy::insecure_dev([engine_m]).map_err(|e| failed("dev policy", e))?;
            KdsConfig::new(engines.clone(), engines)
        }
    };
    // A join keeps the master secret sealed or, without a sealing key, in memory only.
    let parts = |keep: clave_kds::Keep| {
        kds_parts(simulated).map(|(sealer, attester)| {
            (sealer.filter(|_| keep == clave_kds::Keep::Sealed), attester)
        })
    };

    let (kds, origin) = match plan {
        clave_kds::StartPlan::Join {
            keep,
            genesis_if_none_reachable,
        } => {
            let parts = || parts(keep);
            let joined = match (join, peers) {
                (Some(url), _) => {
                    let url = base(&url)?;
                    let (sealer, attester) = parts()?;
                    let kds =
                        clave_kds::join_over_http(&url, &data_dir, sealer, attester, config, now())
                            .await?;
                    Ok((kds, url))
                }
                (None, Some(list)) => {
                    let own = format!("http://{listen}");
                    match clave_kds::join_any_peer(&list, &own, &data_dir, &parts, &config, &now)
                        .await?
                    {
                        Some(joined) => Ok(joined),
                        None => Err(config),
                    }
                }
                (None, None) => return Err(CliError::usage("a join needs --join or --peers")),
            };
            match joined {
                Ok((kds, url)) => (kds, format!("joined {url}")),
                Err(config) if genesis_if_none_reachable => {
                    tracing::warn!("no KDS peer reachable: genesis of a new master secret");
                    let (sealer, attester) = parts()?;
                    let kds = clave_kds::start::open_local(
                        &clave_kds::StartPlan::Genesis { keep },
                        &data_dir,
                        sealer,
                        attester,
                        config,
                        now(),
                        rng(),
                    )
                    .map_err(|e| failed("the KDS did not start", e))?;
                    (kds, "genesis (no peer reachable)".to_owned())
                }
                Err(_) => {
                    return Err(CliError::failed(
                        "no KDS peer is reachable, and this KDS keeps its master secret in memory \
only: it does not start alone (start the first replica with --master-secret-source memory-genesis)",
                    ));
                }
            }
        }
        plan => {
            if plan == clave_kds::StartPlan::Unseal && (join.is_some() || peers.is_some()) {
                tracing::info!("the data directory holds a master secret: not joining");
            }
            let keep = match &plan {
                clave_kds::StartPlan::Genesis { keep } => *keep,
                _ => clave_kds::Keep::Sealed,
            };
            let (sealer, attester) = parts(keep)?;
            let what = match &plan {
                clave_kds::StartPlan::Unseal => "opened sealed state".to_owned(),
                clave_kds::StartPlan::Genesis {
                    keep: clave_kds::Keep::Sealed,
                } => "genesis".to_owned(),
                clave_kds::StartPlan::Genesis { .. } => "genesis in memory only".to_owned(),
                _ => "master secret from an EXTERNAL key source".to_owned(),
            };
            let kds = clave_kds::start::open_local(
                &plan,
                &data_dir,
                sealer,
                attester,
                config,
                now(),
                rng(),
            )
            .map_err(|e| failed("the KDS did not start", e))?;
            (kds, what)
        }
    };
    let identity = hex::encode(kds.identity_public_key());
    let app = clave_kds::router(Arc::new(kds));
    let (listener, addr) = bind(listen).await?;
    announce(&format!(
        "clave kds listening on http://{addr} ({tee}; {origin}; identity {identity}; data {})",
        data_dir.display()
    ));
    axum::serve(clave_gateway::no_delay(listener), app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| failed("the KDS server failed", e))?;
    announce("clave kds stopped");
    Ok(())
}

/// A KDS's sealer (if its TEE has a sealing key) and attester.
type KdsParts = (Option<clave_kds::KdsSealer>, clave_kds::KdsAttester);

/// The KDS's sealer and attester: the simulated pair, or on hardware the configfs-tsm attester
/// with, on SEV-SNP, the firmware-derived sealing key through `/dev/sev-guest`. TDX has no
/// sealing key: the sealer is `None` and [`clave_kds::plan_start`] decides what the KDS may do.
fn kds_parts(simulated: bool) -> Result<KdsParts, CliError> {
    if simulated {
        let m = dev_kds_measurement();
        let attester = InsecureSimulatedAttester::new(m.clone())
            .map_err(|e| failed("simulated KDS attester", e))?;
        return Ok((
            Some(Box::new(InsecureSimulatedSealer::new(m.as_bytes()))),
            Box::new(attester),
        ));
    }
    #[cfg(feature = "configfs-tsm")]
    {
        use clave_attest::Attester as _;
        let attester = clave_attest::configfs_tsm::ConfigfsTsmAttester::open(
            clave_attest::configfs_tsm::DEFAULT_TSM_ROOT,
        )
        .map_err(|e| {
            failed(
                "cannot open configfs-tsm (is this an SEV-SNP or TDX guest?)",
                e,
            )
        })?;
        let sealer: Option<clave_kds::KdsSealer> = match attester.kind() {
            #[cfg(feature = "sev-guest")]
            clave_attest::TeeKind::SevSnp => {
                use clave_kds::snp_seal::{DerivedKeyRequest, DevSevGuest, SevSnpDerivedKeySealer};
                let device = DevSevGuest::open(std::path::Path::new(DevSevGuest::PATH))
                    .map_err(|e| failed("cannot open /dev/sev-guest for the sealing key", e))?;
                Some(Box::new(SevSnpDerivedKeySealer::new(
                    device,
                    DerivedKeyRequest::for_kds(0, None),
                    attester.measurement().as_bytes(),
                )))
            }
            #[cfg(not(feature = "sev-guest"))]
            clave_attest::TeeKind::SevSnp => {
                tracing::warn!(
                    "this build has no SEV-SNP sealing key (build clave with --features \
                     configfs-tsm,sev-guest): the master secret can only be kept in memory"
                );
                None
            }
            _ => None,
        };
        Ok((sealer, Box::new(attester)))
    }
    #[cfg(not(feature = "configfs-tsm"))]
    {
        Err(CliError::failed(format!(
            "the KDS cannot start: {SIMULATED_REFUSED}"
        )))
    }
}
