//! How a KDS starts: where its master secret comes from, and when it must refuse to start.
//!
//! A KDS keeps its master secret in one of three ways ([`MasterSecretSource`]):
//!
//! * **sealed** — in its data directory, sealed to the TEE ([`crate::seal`]). Only where a
//!   sealing key exists: SEV-SNP (the firmware-derived key) and the simulated TEE. The default
//!   there.
//! * **memory** — only in the memory of the running replicas: a replica starting obtains it from
//!   another one (`--join URL` or `--peers LIST`) and refuses to start when none answers, rather
//!   than create a master secret of its own that would die with it. The first replica of such a
//!   cluster is started once with **memory-genesis**. The default on a TEE without a sealing key
//!   (TDX, Nitro) when a peer is given.
//! * **external** — read at every start from a file or file descriptor the host provides
//!   (`external:PATH`, `external:fd:N`). Whoever provides it knows the master secret and can
//!   derive every key: the KDS then says so in every attestation
//!   ([`MasterSecretOrigin::External`]), clients refuse it unless told to accept it, and a replica
//!   that joins it inherits the label.
//!
//! [`plan_start`] is the decision, separate from any I/O so that every case is tested; the
//! constructors that carry out the non-sealed plans are [`Kds::open_external`] and
//! [`Kds::genesis_in_memory`] (joins in memory go through [`crate::PendingJoin::new_in_memory`]).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use clave_attest::TeeKind;
use clave_proto::MasterSecret;
use clave_proto::kds_api::MasterSecretOrigin;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::kds::{Kds, KdsAttester, KdsConfig, KdsSealer};
use crate::{Error, MASTER_SEALED_FILE};

/// Where a KDS keeps its master secret (see the module docs). Parsed from
/// `sealed | memory | memory-genesis | external:PATH | external:fd:N`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MasterSecretSource {
    /// Sealed to the TEE in the data directory.
    Sealed,
    /// In memory only, obtained from a running replica.
    Memory,
    /// In memory only, created now: the first replica of a memory-only cluster.
    MemoryGenesis,
    /// Read from outside the TEE at every start: whoever provides it knows it.
    External(ExternalKeySource),
}

impl FromStr for MasterSecretSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sealed" => Ok(MasterSecretSource::Sealed),
            "memory" => Ok(MasterSecretSource::Memory),
            "memory-genesis" => Ok(MasterSecretSource::MemoryGenesis),
            _ => match s.strip_prefix("external:") {
                Some(rest) => rest.parse().map(MasterSecretSource::External),
                None => Err(format!(
                    "unknown master secret source `{s}`: expected sealed, memory, memory-genesis, \
                     external:PATH or external:fd:N"
                )),
            },
        }
    }
}

impl fmt::Display for MasterSecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterSecretSource::Sealed => f.write_str("sealed"),
            MasterSecretSource::Memory => f.write_str("memory"),
            MasterSecretSource::MemoryGenesis => f.write_str("memory-genesis"),
            MasterSecretSource::External(e) => write!(f, "external:{e}"),
        }
    }
}

/// Where an external master secret is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternalKeySource {
    /// A file (a tmpfs mount, a named pipe).
    File(PathBuf),
    /// A file descriptor inherited from the parent process, read through `/proc/self/fd/N`.
    Fd(u32),
}

impl FromStr for ExternalKeySource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(n) = s.strip_prefix("fd:") {
            return n
                .parse::<u32>()
                .map(ExternalKeySource::Fd)
                .map_err(|_| format!("`external:fd:{n}`: the descriptor must be a number"));
        }
        if s.is_empty() {
            return Err("`external:` needs a file: external:PATH or external:fd:N".to_owned());
        }
        Ok(ExternalKeySource::File(PathBuf::from(s)))
    }
}

impl fmt::Display for ExternalKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExternalKeySource::File(p) => write!(f, "{}", p.display()),
            ExternalKeySource::Fd(n) => write!(f, "fd:{n}"),
        }
    }
}

impl ExternalKeySource {
    fn path(&self) -> PathBuf {
        match self {
            ExternalKeySource::File(p) => p.clone(),
            ExternalKeySource::Fd(n) => PathBuf::from(format!("/proc/self/fd/{n}")),
        }
    }

    /// Reads the master secret: exactly 32 bytes, or 64 hex digits with an optional trailing
    /// newline. Anything else is refused without echoing it.
    pub fn read(&self) -> Result<MasterSecret, Error> {
        let path = self.path();
        let bytes = Zeroizing::new(fs::read(&path).map_err(|e| Error::io(&path, e))?);
        parse_master_secret(&bytes).ok_or(Error::ExternalMasterSecret {
            source_name: self.to_string(),
            len: bytes.len(),
        })
    }
}

fn parse_master_secret(bytes: &[u8]) -> Option<MasterSecret> {
    if let Ok(raw) = <[u8; 32]>::try_from(bytes) {
        return Some(MasterSecret::from_bytes(raw));
    }
    let text = bytes
        .strip_suffix(b"\n")
        .map(|t| t.strip_suffix(b"\r").unwrap_or(t))
        .unwrap_or(bytes);
    if text.len() != 64 {
        return None;
    }
    let mut out = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text, out.as_mut_slice()).ok()?;
    Some(MasterSecret::from_bytes(*out))
}

/// The peers a KDS was told about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerHint {
    /// Neither `--join` nor `--peers`.
    None,
    /// `--join URL`: one replica that must answer.
    Join,
    /// `--peers LIST`: try each; none reachable means "first of the cluster".
    Peers,
}

/// What the KDS knows about itself before it touches its master secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartSituation {
    /// Its TEE kind.
    pub tee: TeeKind,
    /// Whether a sealing key exists for it (SEV-SNP with `/dev/sev-guest`, the simulated TEE).
    pub can_seal: bool,
    /// `--master-secret-source`, if given.
    pub source: Option<MasterSecretSource>,
    /// Whether the data directory holds a sealed master secret.
    pub has_sealed_master: bool,
    /// The peers given.
    pub peers: PeerHint,
}

/// Where the master secret is kept once the KDS runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Sealed in the data directory.
    Sealed,
    /// In memory only.
    MemoryOnly,
}

/// What the KDS does to obtain its master secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartPlan {
    /// Unseal the master secret in the data directory.
    Unseal,
    /// Create a new master secret.
    Genesis {
        /// Where it is kept.
        keep: Keep,
    },
    /// Obtain the master secret from a running replica (mutual attestation).
    Join {
        /// Where it is kept.
        keep: Keep,
        /// With `--peers`: create one when no peer is reachable (only when it can be sealed).
        genesis_if_none_reachable: bool,
    },
    /// Read it from an external key source (see [`MasterSecretSource::External`]).
    External(ExternalKeySource),
}

fn refuse(reason: String) -> Error {
    Error::StartRefused(reason)
}

/// Decides how a KDS starts (see the module docs), or why it must not.
pub fn plan_start(s: &StartSituation) -> Result<StartPlan, Error> {
    let joining = s.peers != PeerHint::None;
    let source = match &s.source {
        Some(src) => src.clone(),
        None if s.can_seal => MasterSecretSource::Sealed,
        None if joining => MasterSecretSource::Memory,
        None => {
            return Err(refuse(format!(
                "a KDS on {} has no hardware sealing key, so it does not start alone: give \
                 --join URL (or --peers LIST) of a running replica to keep the master secret in \
                 memory only, --master-secret-source memory-genesis to start the first replica \
                 of such a cluster, or --master-secret-source external:FILE to read it from a \
                 key source you trust (whoever provides it can derive every key; clients see \
                 it and refuse it by default).",
                s.tee
            )));
        }
    };
    let not_with_sealed_file = |what: &str| -> Result<(), Error> {
        if s.has_sealed_master {
            return Err(refuse(format!(
                "the data directory holds a sealed master secret ({MASTER_SEALED_FILE}), but \
                 --master-secret-source {what} was given: start with --master-secret-source \
                 sealed, or use another data directory."
            )));
        }
        Ok(())
    };
    let not_with_peers = |what: &str| -> Result<(), Error> {
        if joining {
            return Err(refuse(format!(
                "--master-secret-source {what} does not join a replica: drop --join/--peers, \
                 or use --master-secret-source memory to join."
            )));
        }
        Ok(())
    };
    match source {
        MasterSecretSource::Sealed => {
            if !s.can_seal {
                return Err(refuse(format!(
                    "--master-secret-source sealed: a KDS on {} has no sealing key (only \
                     SEV-SNP, through /dev/sev-guest, has one): use memory with --join, \
                     memory-genesis or external:FILE.",
                    s.tee
                )));
            }
            Ok(match (s.has_sealed_master, s.peers) {
                (true, _) => StartPlan::Unseal,
                (false, PeerHint::None) => StartPlan::Genesis { keep: Keep::Sealed },
                (false, PeerHint::Join) => StartPlan::Join {
                    keep: Keep::Sealed,
                    genesis_if_none_reachable: false,
                },
                (false, PeerHint::Peers) => StartPlan::Join {
                    keep: Keep::Sealed,
                    genesis_if_none_reachable: true,
                },
            })
        }
        MasterSecretSource::Memory => {
            not_with_sealed_file("memory")?;
            if !joining {
                return Err(refuse(
                    "--master-secret-source memory keeps the master secret only in the memory \
                     of running replicas: give --join URL or --peers LIST (or memory-genesis \
                     for the first replica)."
                        .to_owned(),
                ));
            }
            Ok(StartPlan::Join {
                keep: Keep::MemoryOnly,
                genesis_if_none_reachable: false,
            })
        }
        MasterSecretSource::MemoryGenesis => {
            not_with_sealed_file("memory-genesis")?;
            not_with_peers("memory-genesis")?;
            Ok(StartPlan::Genesis {
                keep: Keep::MemoryOnly,
            })
        }
        MasterSecretSource::External(src) => {
            not_with_sealed_file("external")?;
            not_with_peers("external")?;
            Ok(StartPlan::External(src))
        }
    }
}

/// Carries out a plan that needs no peer: [`StartPlan::Unseal`] and [`StartPlan::Genesis`] with
/// `Keep::Sealed` ([`Kds::open`], which needs `sealer`), [`StartPlan::Genesis`] with
/// `Keep::MemoryOnly` ([`Kds::genesis_in_memory`]) and [`StartPlan::External`]
/// ([`Kds::open_external`]). A join plan is an error: joins go through a
/// [`crate::PendingJoin`].
pub fn open_local(
    plan: &StartPlan,
    dir: &Path,
    sealer: Option<KdsSealer>,
    attester: KdsAttester,
    config: KdsConfig,
    now: u64,
    rng: impl CryptoRng + Send + 'static,
) -> Result<Kds, Error> {
    match plan {
        StartPlan::Unseal | StartPlan::Genesis { keep: Keep::Sealed } => {
            let sealer = sealer.ok_or_else(|| {
                Error::StartRefused("this KDS has no sealing key to keep the master secret".into())
            })?;
            Kds::open(dir, sealer, attester, config, now, rng)
        }
        StartPlan::Genesis {
            keep: Keep::MemoryOnly,
        } => Kds::genesis_in_memory(dir, attester, config, now, rng),
        StartPlan::External(src) => Kds::open_external(dir, src, attester, config, now, rng),
        StartPlan::Join { .. } => Err(Error::Internal("a join plan needs a peer")),
    }
}

impl Kds {
    /// Starts a KDS whose master secret comes from `source` (read now, never written): every
    /// attestation it makes says [`MasterSecretOrigin::External`], and it warns in its log.
    pub fn open_external(
        dir: &Path,
        source: &ExternalKeySource,
        attester: KdsAttester,
        config: KdsConfig,
        now: u64,
        rng: impl CryptoRng + Send + 'static,
    ) -> Result<Kds, Error> {
        let master = source.read()?;
        tracing::warn!(
            source = %source,
            "KDS master secret read from an external key source: whoever provides it can derive \
             every key; every attestation of this KDS says so"
        );
        Kds::open_in_memory(
            dir,
            master,
            MasterSecretOrigin::External,
            attester,
            config,
            now,
            Box::new(rng),
        )
    }

    /// Starts the first replica of a memory-only cluster: a new master secret that is never
    /// written anywhere (it is lost when the last replica stops).
    pub fn genesis_in_memory(
        dir: &Path,
        attester: KdsAttester,
        config: KdsConfig,
        now: u64,
        rng: impl CryptoRng + Send + 'static,
    ) -> Result<Kds, Error> {
        let mut rng: crate::KdsRng = Box::new(rng);
        let master = MasterSecret::generate(&mut rng);
        tracing::warn!(
            dir = %dir.display(),
            "KDS genesis in memory: the master secret exists only in this process and the \
             replicas that join it"
        );
        Kds::open_in_memory(
            dir,
            master,
            MasterSecretOrigin::Tee,
            attester,
            config,
            now,
            rng,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn situation(tee: TeeKind, can_seal: bool) -> StartSituation {
        StartSituation {
            tee,
            can_seal,
            source: None,
            has_sealed_master: false,
            peers: PeerHint::None,
        }
    }

    fn refused(s: &StartSituation, words: &str) {
        match plan_start(s) {
            Err(Error::StartRefused(reason)) => {
                assert!(reason.contains(words), "{reason:?} lacks {words:?}")
            }
            other => panic!("{s:?} must be refused, got {other:?}"),
        }
    }

    #[test]
    fn sources_parse_and_refuse_nonsense() {
        for (text, want) in [
            ("sealed", MasterSecretSource::Sealed),
            ("memory", MasterSecretSource::Memory),
            ("memory-genesis", MasterSecretSource::MemoryGenesis),
            (
                "external:/run/keys/m",
                MasterSecretSource::External(ExternalKeySource::File("/run/keys/m".into())),
            ),
            (
                "external:fd:3",
                MasterSecretSource::External(ExternalKeySource::Fd(3)),
            ),
        ] {
            assert_eq!(text.parse::<MasterSecretSource>(), Ok(want.clone()));
            assert_eq!(want.to_string(), text);
        }
        for bad in [
            "",
            "Sealed",
            "external",
            "external:",
            "external:fd:x",
            "hsm",
        ] {
            let err = bad.parse::<MasterSecretSource>().expect_err(bad);
            assert!(err.contains("external:"), "{bad}: {err}");
        }
    }

    #[test]
    fn external_secrets_parse_raw_or_hex_only() {
        let hex64 = "ab".repeat(32);
        for ok in [
            vec![7u8; 32],
            hex64.clone().into_bytes(),
            format!("{hex64}\n").into_bytes(),
            format!("{hex64}\r\n").into_bytes(),
        ] {
            assert!(parse_master_secret(&ok).is_some(), "{ok:?}");
        }
        for bad in [
            vec![],
            vec![7u8; 31],
            vec![7u8; 33],
            "zz".repeat(32).into_bytes(),
            format!("{hex64}\n\n").into_bytes(),
            "ab".repeat(31).into_bytes(),
        ] {
            assert!(parse_master_secret(&bad).is_none(), "{bad:?}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m");
        fs::write(&path, b"short").expect("write");
        let err = ExternalKeySource::File(path.clone())
            .read()
            .expect_err("refused");
        assert!(
            matches!(&err, Error::ExternalMasterSecret { len: 5, .. }),
            "{err}"
        );
        assert!(
            !err.to_string().contains("short"),
            "echoes the bytes: {err}"
        );
        let missing = ExternalKeySource::File(dir.path().join("absent"))
            .read()
            .expect_err("missing");
        assert!(matches!(missing, Error::Io { .. }), "{missing}");
        fs::write(&path, [9u8; 32]).expect("write");
        let m = ExternalKeySource::File(path).read().expect("read");
        assert_eq!(m.expose_secret(), &[9u8; 32]);
    }

    #[test]
    fn a_tee_with_a_sealing_key_seals_by_default() {
        let mut s = situation(TeeKind::SevSnp, true);
        assert_eq!(
            plan_start(&s).expect("plan"),
            StartPlan::Genesis { keep: Keep::Sealed }
        );
        s.peers = PeerHint::Peers;
        assert_eq!(
            plan_start(&s).expect("plan"),
            StartPlan::Join {
                keep: Keep::Sealed,
                genesis_if_none_reachable: true
            }
        );
        s.peers = PeerHint::Join;
        assert_eq!(
            plan_start(&s).expect("plan"),
            StartPlan::Join {
                keep: Keep::Sealed,
                genesis_if_none_reachable: false
            }
        );
        s.has_sealed_master = true;
        assert_eq!(plan_start(&s).expect("plan"), StartPlan::Unseal);
        // The simulated TEE has its (public) sealer: unchanged behaviour for `clave dev`.
        let sim = situation(TeeKind::InsecureSimulated, true);
        assert_eq!(
            plan_start(&sim).expect("plan"),
            StartPlan::Genesis { keep: Keep::Sealed }
        );
    }

    #[test]
    fn tdx_and_nitro_never_start_alone() {
        for tee in [TeeKind::Tdx, TeeKind::Nitro] {
            let alone = situation(tee, false);
            refused(&alone, "does not start alone");
            for peers in [PeerHint::Join, PeerHint::Peers] {
                let s = StartSituation {
                    peers,
                    ..alone.clone()
                };
                assert_eq!(
                    plan_start(&s).expect("plan"),
                    StartPlan::Join {
                        keep: Keep::MemoryOnly,
                        genesis_if_none_reachable: false
                    },
                    "{tee} with {peers:?}: join, and no genesis when nobody answers"
                );
            }
            // Asking for sealing without a key is refused, with or without peers.
            let sealed = StartSituation {
                source: Some(MasterSecretSource::Sealed),
                peers: PeerHint::Peers,
                ..alone.clone()
            };
            refused(&sealed, "has no sealing key");
            // Memory without a peer is "alone".
            let memory = StartSituation {
                source: Some(MasterSecretSource::Memory),
                ..alone.clone()
            };
            refused(&memory, "give --join URL or --peers LIST");
            // The explicit first replica, and the explicit external source.
            let first = StartSituation {
                source: Some(MasterSecretSource::MemoryGenesis),
                ..alone.clone()
            };
            assert_eq!(
                plan_start(&first).expect("plan"),
                StartPlan::Genesis {
                    keep: Keep::MemoryOnly
                }
            );
            let ext = ExternalKeySource::Fd(3);
            let external = StartSituation {
                source: Some(MasterSecretSource::External(ext.clone())),
                ..alone.clone()
            };
            assert_eq!(
                plan_start(&external).expect("plan"),
                StartPlan::External(ext)
            );
        }
    }

    #[test]
    fn explicit_sources_refuse_contradictions() {
        for tee_can_seal in [true, false] {
            let base = situation(TeeKind::SevSnp, tee_can_seal);
            for (source, words) in [
                (MasterSecretSource::MemoryGenesis, "memory-genesis"),
                (
                    MasterSecretSource::External(ExternalKeySource::Fd(3)),
                    "external",
                ),
            ] {
                let with_peers = StartSituation {
                    source: Some(source.clone()),
                    peers: PeerHint::Join,
                    ..base.clone()
                };
                refused(&with_peers, "does not join a replica");
                let with_file = StartSituation {
                    source: Some(source),
                    has_sealed_master: true,
                    ..base.clone()
                };
                refused(&with_file, words);
                refused(&with_file, "holds a sealed master secret");
            }
            let memory_with_file = StartSituation {
                source: Some(MasterSecretSource::Memory),
                has_sealed_master: true,
                peers: PeerHint::Join,
                ..base.clone()
            };
            refused(&memory_with_file, "holds a sealed master secret");
        }
    }
}
