//! A floor under the engine's clock across restarts.
//!
//! Inside a confidential VM the wall clock is set by the host. The engine accepts a request when
//! its sealed `date` lies within the date window of the engine's clock, and its replay cache (in
//! memory) is empty after a restart; a host that restarts an engine with the clock wound back
//! could have it accept, again, requests it ran before. So the engine keeps a **high-water mark**
//! of the latest time it served at in its data directory ([`CLOCK_FLOOR_FILE`]) and refuses to
//! start — and, while running, refuses every request — at a time more than
//! [`crate::EngineConfig::max_clock_regression_secs`] before it.
//!
//! The engine has no hardware sealing key. The file is authenticated instead (HMAC-SHA256) under
//! a key derived from the engine's **code private key**, which the KDS releases only to engines
//! its code policy admits: the host cannot write a lower floor, only delete the file (the engine
//! then cannot tell it from a first start) or put back an older file (the floor is then the time
//! that file was written). On the simulated TEE the code key is released to anyone who forges
//! simulated evidence, so the floor there protects nothing; the file says which it is.
//!
//! File (41 + 32 bytes): `"clave/v1/engine-clock\0"` (22 bytes) ‖ mode (1 = TEE, 2 = INSECURE
//! simulated TEE) ‖ u64 big-endian unix seconds ‖ 10 zero bytes (reserved) ‖
//! HMAC-SHA256(key, all preceding bytes). Replaced atomically (temp file, fsync, rename).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::Error;

/// File name of the clock floor inside the engine's data directory.
pub const CLOCK_FLOOR_FILE: &str = "engine-clock.floor";

const LABEL: &[u8] = b"clave/v1/engine-clock\0";
const BODY_LEN: usize = LABEL.len() + 1 + 8 + 10;
const FILE_LEN: usize = BODY_LEN + 32;

/// How far past the persisted mark the clock may move before the mark is written again (at most
/// one write a minute; a crash loses at most this much of the floor).
const PERSIST_EVERY_SECS: u64 = 60;

/// Whether the key behind the floor comes from a real TEE or the simulated one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FloorMode {
    Tee = 1,
    InsecureSimulated = 2,
}

#[derive(Debug)]
struct Marks {
    seen: u64,
    persisted: u64,
}

/// The clock floor of one engine (see the module docs).
pub(crate) struct ClockFloor {
    path: PathBuf,
    key: Zeroizing<[u8; 32]>,
    mode: FloorMode,
    max_regression: u64,
    marks: Mutex<Marks>,
}

impl std::fmt::Debug for ClockFloor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClockFloor")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// The MAC key of the floor file: HKDF-SHA256 of the code private key.
pub(crate) fn floor_key(code_private_key: &[u8]) -> Result<Zeroizing<[u8; 32]>, Error> {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(b"clave/v1/engine-clock-floor"), code_private_key);
    let mut key = Zeroizing::new([0u8; 32]);
    hk.expand(b"hmac-sha256", key.as_mut_slice())
        .map_err(|_| Error::Config("clock floor key derivation".into()))?;
    Ok(key)
}

fn mac(key: &[u8; 32], body: &[u8]) -> Result<[u8; 32], Error> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .map_err(|_| Error::Config("clock floor key".into()))?;
    m.update(body);
    Ok(m.finalize().into_bytes().into())
}

fn encode(key: &[u8; 32], mode: FloorMode, t: u64) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(FILE_LEN);
    out.extend_from_slice(LABEL);
    out.push(mode as u8);
    out.extend_from_slice(&t.to_be_bytes());
    out.extend_from_slice(&[0u8; 10]);
    let tag = mac(key, &out)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Parses and authenticates a floor file; the error says why it is refused.
fn decode(key: &[u8; 32], mode: FloorMode, bytes: &[u8]) -> Result<u64, &'static str> {
    if bytes.len() != FILE_LEN || !bytes.starts_with(LABEL) {
        return Err("it is not an engine clock floor file");
    }
    let (body, tag) = bytes.split_at(BODY_LEN);
    let want = mac(key, body).map_err(|_| "the key is unusable")?;
    if !macs_equal(&want, tag) {
        return Err(
            "it does not verify under this engine's code key (tampered, or written by an engine \
             of another code policy)",
        );
    }
    if body[LABEL.len()] != mode as u8 {
        return Err("it was written on another kind of TEE (simulated vs hardware)");
    }
    let mut t = [0u8; 8];
    t.copy_from_slice(&body[LABEL.len() + 1..LABEL.len() + 9]);
    Ok(u64::from_be_bytes(t))
}

/// Constant-time comparison of two MACs.
fn macs_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::ClockFloor(format!("{}: {e}", path.display()));
    let tmp = path.with_extension("floor.tmp");
    {
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Opens the floor of `config.data_dir` (if any) under the engine's code key in `ring`.
pub(crate) fn open_for(
    config: &crate::EngineConfig,
    ring: &crate::keys::KeyRing,
    simulated: bool,
    now: u64,
) -> Result<Option<ClockFloor>, Error> {
    let Some(dir) = &config.data_dir else {
        return Ok(None);
    };
    // The code key of the lowest spec id: the same for every engine of this code policy.
    let code = ring
        .held
        .values()
        .find(|h| h.purpose == clave_proto::spec::KeyPurpose::Code)
        .ok_or(Error::MissingKey { purpose: "code" })?;
    let key = floor_key(&code.key.private_key().to_bytes())?;
    let mode = if simulated {
        tracing::warn!(
            "engine clock floor on the INSECURE simulated TEE: its key is released to anyone \
             who forges simulated evidence, so it protects nothing"
        );
        FloorMode::InsecureSimulated
    } else {
        FloorMode::Tee
    };
    ClockFloor::open(dir, key, mode, now, config.max_clock_regression_secs).map(Some)
}

impl ClockFloor {
    /// Reads the floor in `dir`, checks `now` against it and records `now` (written at once when
    /// there is no file or the clock moved a minute or more past the stored mark, otherwise by
    /// [`ClockFloor::observe`] once it has).
    pub(crate) fn open(
        dir: &Path,
        key: Zeroizing<[u8; 32]>,
        mode: FloorMode,
        now: u64,
        max_regression: u64,
    ) -> Result<ClockFloor, Error> {
        fs::create_dir_all(dir)
            .map_err(|e| Error::ClockFloor(format!("{}: {e}", dir.display())))?;
        let path = dir.join(CLOCK_FLOOR_FILE);
        let stored = match fs::read(&path) {
            Ok(bytes) => Some(decode(&key, mode, &bytes).map_err(|why| {
                Error::ClockFloor(format!(
                    "{} is refused: {why}; the engine does not start on a clock floor it cannot \
                     trust (delete the file only if you know why it changed)",
                    path.display()
                ))
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::info!(path = %path.display(), "no engine clock floor yet: starting one");
                None
            }
            Err(e) => return Err(Error::ClockFloor(format!("{}: {e}", path.display()))),
        };
        let high_water = stored.unwrap_or(0);
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
                write(&path, &encode(&key, mode, mark)?)?;
                mark
            }
        };
        Ok(ClockFloor {
            path,
            key,
            mode,
            max_regression,
            marks: Mutex::new(Marks {
                seen: mark,
                persisted,
            }),
        })
    }

    /// Refuses `now` if it lies more than the allowed regression before the latest time seen;
    /// otherwise raises the mark (written at most once a minute; a failed write is traced and
    /// retried later: it weakens the floor but stops nothing).
    pub(crate) fn observe(&self, now: u64) -> Result<(), Error> {
        let mut m = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        if now.saturating_add(self.max_regression) < m.seen {
            return Err(Error::ClockBehind {
                now,
                high_water: m.seen,
            });
        }
        m.seen = m.seen.max(now);
        if m.seen >= m.persisted.saturating_add(PERSIST_EVERY_SECS) {
            match encode(&self.key, self.mode, m.seen).and_then(|b| write(&self.path, &b)) {
                Ok(()) => m.persisted = m.seen,
                Err(e) => tracing::warn!(error = %e, "cannot persist the engine clock floor"),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Zeroizing<[u8; 32]> {
        floor_key(&[b; 32]).expect("key")
    }

    #[test]
    fn round_trip_and_every_refusal() {
        let k = key(1);
        let bytes = encode(&k, FloorMode::Tee, 1234).expect("encode");
        assert_eq!(bytes.len(), FILE_LEN);
        assert_eq!(decode(&k, FloorMode::Tee, &bytes), Ok(1234));
        // Another code key, another mode, any flipped bit or truncation: refused.
        assert!(
            decode(&key(2), FloorMode::Tee, &bytes)
                .expect_err("other key")
                .contains("does not verify")
        );
        assert!(
            decode(&k, FloorMode::InsecureSimulated, &bytes)
                .expect_err("other mode")
                .contains("another kind of TEE")
        );
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 1;
            let why = decode(&k, FloorMode::Tee, &b).expect_err("flip");
            assert!(
                why.contains("does not verify") || why.contains("not an engine clock floor"),
                "byte {i}: {why}"
            );
        }
        for len in 0..bytes.len() {
            assert_eq!(
                decode(&k, FloorMode::Tee, &bytes[..len]),
                Err("it is not an engine clock floor file")
            );
        }
    }

    #[test]
    fn floor_refuses_a_wound_back_clock_across_restarts_and_while_running() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = ClockFloor::open(dir.path(), key(1), FloorMode::Tee, 10_000, 120).expect("open");
        f.observe(10_500).expect("forward");
        // Within the skew: fine; beyond: refused.
        f.observe(10_500 - 120).expect("within skew");
        assert!(matches!(
            f.observe(10_500 - 121),
            Err(Error::ClockBehind {
                now: 10_379,
                high_water: 10_500
            })
        ));
        drop(f);
        // The mark reached the disk (more than a minute past the last write).
        assert!(matches!(
            ClockFloor::open(dir.path(), key(1), FloorMode::Tee, 10_000, 120),
            Err(Error::ClockBehind {
                now: 10_000,
                high_water: 10_500
            })
        ));
        ClockFloor::open(dir.path(), key(1), FloorMode::Tee, 10_400, 120).expect("within skew");
        // A floor written under another code key is refused, not silently replaced.
        let err = ClockFloor::open(dir.path(), key(2), FloorMode::Tee, 20_000, 120)
            .expect_err("other key");
        assert!(
            matches!(&err, Error::ClockFloor(m) if m.contains("does not verify")),
            "{err}"
        );
    }

    #[test]
    fn a_restart_within_a_minute_of_the_stored_mark_does_not_rewrite_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(CLOCK_FLOOR_FILE);
        let stored = || {
            decode(
                &key(1),
                FloorMode::Tee,
                &fs::read(&path).expect("floor file"),
            )
        };
        let open = |now| ClockFloor::open(dir.path(), key(1), FloorMode::Tee, now, 300);
        drop(open(1_000).expect("first start"));
        assert_eq!(stored(), Ok(1_000), "the first start writes its mark");
        let written = fs::read(&path).expect("floor file");

        // 59 s past the stored mark: the file stays as it is...
        let floor = open(1_059).expect("restart");
        assert_eq!(fs::read(&path).expect("floor file"), written);
        // ...the running floor still holds 1059...
        assert!(matches!(
            floor.observe(1_059 - 300 - 1),
            Err(Error::ClockBehind {
                high_water: 1_059,
                ..
            })
        ));
        // ...and writes once the clock is a minute past the stored mark.
        floor.observe(1_060).expect("observe");
        assert_eq!(stored(), Ok(1_060));
        drop(floor);

        // A restart a minute or more past the stored mark writes at once.
        drop(open(1_120).expect("restart"));
        assert_eq!(stored(), Ok(1_120));
        // Behind the stored mark (within the regression): nothing written, the mark is kept.
        drop(open(1_100).expect("small regression"));
        assert_eq!(stored(), Ok(1_120));
    }
}
