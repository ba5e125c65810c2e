//! A floor under the KDS's clock.
//!
//! Inside a confidential VM the wall clock is set by the host. The KDS keeps a **high-water
//! mark** of the latest time it has acted at, sealed with its own sealer in
//! [`CLOCK_SEALED_FILE`], and refuses to start — and, while running, refuses releases, joins and
//! bundle signing — at a time more than [`KdsConfig::max_clock_regression_secs`] before it. So
//! the host cannot wind the clock back to have this KDS sign bundles of past epochs again or
//! accept evidence that has expired since.
//!
//! What it does not stop (see `docs/security.md`): the host can still hold the clock still or
//! slow it down, move it forward, delete the file of a KDS on the simulated TEE (whose sealing key
//! is public anyway) or of a KDS without a sealing key (whose file is sealed under a key derived
//! from the master secret, [`crate::MasterKeyedSealer`]), or put back an *older* sealed file of
//! the same KDS — the floor is then the time that file was written, never earlier than genesis.
//! A KDS whose sealer is bound to hardware refuses to open a master secret without its clock
//! file.
//!
//! File: the [`crate::seal`] envelope around `"clave/v1/kds-clock\0" ‖ u64 big-endian`,
//! replaced atomically (temp file, fsync, rename).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rand_core::CryptoRng;

use crate::Error;
use crate::seal::{Sealer, SealerKind};

/// File name of the sealed clock high-water mark inside the KDS data directory.
pub const CLOCK_SEALED_FILE: &str = "clock.sealed";

const CLOCK_LABEL: &[u8] = b"clave/v1/kds-clock\0";

/// How far past the persisted mark the clock may move before the mark is written again
/// (bounds writes to one a minute; a crash loses at most this much of the floor).
const PERSIST_EVERY_SECS: u64 = 60;

#[derive(Debug)]
struct Marks {
    /// The latest time seen.
    seen: u64,
    /// The time last written to disk.
    persisted: u64,
}

/// The high-water mark of one KDS (see the module docs).
#[derive(Debug)]
pub(crate) struct ClockFloor {
    path: PathBuf,
    max_regression: u64,
    marks: Mutex<Marks>,
}

fn read(path: &Path, sealer: &dyn Sealer) -> Result<Option<u64>, Error> {
    let blob = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let plain = sealer.unseal(&blob)?;
    let body = plain
        .strip_prefix(CLOCK_LABEL)
        .ok_or(Error::SealedStateCorrupt)?;
    let bytes: [u8; 8] = body.try_into().map_err(|_| Error::SealedStateCorrupt)?;
    Ok(Some(u64::from_be_bytes(bytes)))
}

fn write(path: &Path, sealer: &dyn Sealer, t: u64, rng: &mut dyn CryptoRng) -> Result<(), Error> {
    let mut plain = CLOCK_LABEL.to_vec();
    plain.extend_from_slice(&t.to_be_bytes());
    let blob = sealer.seal(&plain, rng)?;
    let tmp = path.with_extension("sealed.tmp");
    {
        let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(&blob).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    }
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

impl ClockFloor {
    /// Reads the mark of `dir` and checks `now` against it, then records `now` (written at once
    /// when there is no valid file or the clock moved a minute or more past the stored mark,
    /// otherwise by [`ClockFloor::observe`] once it has).
    ///
    /// `had_master`: whether the directory already held a master secret. A hardware-bound
    /// sealer then requires the clock file (it is written at genesis and at every join).
    pub(crate) fn open(
        dir: &Path,
        sealer: &dyn Sealer,
        had_master: bool,
        now: u64,
        max_regression: u64,
        rng: &mut dyn CryptoRng,
    ) -> Result<ClockFloor, Error> {
        let path = dir.join(CLOCK_SEALED_FILE);
        let stored = match read(&path, sealer) {
            // A KDS without a sealing key keeps its clock file under a key derived from the
            // master secret: a file of another cluster (the host can delete it anyway) is
            // replaced rather than keep the replica from starting.
            Err(Error::SealedStateCorrupt) if sealer.kind() == SealerKind::MasterKeyed => {
                tracing::warn!(
                    path = %path.display(),
                    "the clock floor file was sealed under another master secret: starting a new one"
                );
                None
            }
            r => r?,
        };
        let high_water = match stored {
            Some(t) => t,
            None if had_master && sealer.kind() != SealerKind::InsecureSimulated => {
                return Err(Error::ClockFloorMissing(path));
            }
            None => 0,
        };
        if now.saturating_add(max_regression) < high_water {
            return Err(Error::ClockBehind { now, high_water });
        }
        let mark = high_water.max(now);
        // The rule of `observe`: the file is rewritten once the clock has moved a minute past
        // the mark it holds. A restart within that minute keeps it as it is (no fsync on the
        // start path); the floor is then the stored mark, as it would be after a crash.
        let persisted = match stored {
            Some(t) if mark < t.saturating_add(PERSIST_EVERY_SECS) => t,
            _ => {
                write(&path, sealer, mark, rng)?;
                mark
            }
        };
        Ok(ClockFloor {
            path,
            max_regression,
            marks: Mutex::new(Marks {
                seen: mark,
                persisted,
            }),
        })
    }

    /// Refuses `now` if it lies more than the allowed regression before the latest time seen;
    /// otherwise raises the mark (persisting it at most once a minute; a failed write is traced
    /// and retried later, it weakens the floor but stops nothing).
    pub(crate) fn observe(
        &self,
        now: u64,
        sealer: &dyn Sealer,
        rng: &mut dyn CryptoRng,
    ) -> Result<(), Error> {
        let mut m = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        if now.saturating_add(self.max_regression) < m.seen {
            return Err(Error::ClockBehind {
                now,
                high_water: m.seen,
            });
        }
        m.seen = m.seen.max(now);
        if m.seen >= m.persisted.saturating_add(PERSIST_EVERY_SECS) {
            match write(&self.path, sealer, m.seen, rng) {
                Ok(()) => m.persisted = m.seen,
                Err(e) => tracing::warn!(error = %e, "cannot persist the KDS clock floor"),
            }
        }
        Ok(())
    }
}
