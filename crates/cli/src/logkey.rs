//! The developer log key pair: created on first need, kept in the config directory
//! (`log-key`, mode 0600, the X25519 private key as 64 hex digits). Only this file can open the
//! sealed log records of the functions deployed from this machine.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clave_proto::devlog::LogKeyPair;

/// File name of the private key.
pub const LOG_KEY_FILE: &str = "log-key";

/// `dir/log-key`.
#[must_use]
pub fn path(dir: &Path) -> PathBuf {
    dir.join(LOG_KEY_FILE)
}

/// The key pair in `dir`, if there is one.
///
/// # Errors
/// A file that exists but cannot be read or is not a key (the message names the file).
pub fn load(dir: &Path) -> Result<Option<LogKeyPair>, String> {
    let p = path(dir);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => zeroize::Zeroizing::new(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read the log key {}: {e}", p.display())),
    };
    let mut raw = zeroize::Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), raw.as_mut()).map_err(|_| {
        format!(
            "{} is not a log key (64 hex digits expected); move it away to create a new one",
            p.display()
        )
    })?;
    LogKeyPair::from_private_bytes(raw.as_ref())
        .map(Some)
        .map_err(|e| format!("{} is not a valid log key: {e}", p.display()))
}

/// The key pair in `dir`, created (0600) if missing. Returns it and whether it is new.
///
/// # Errors
/// The directory or file cannot be written, or an existing file is not a key.
pub fn load_or_create(dir: &Path) -> Result<(LogKeyPair, bool), String> {
    if let Some(k) = load(dir)? {
        return Ok((k, false));
    }
    let pair = LogKeyPair::generate(&mut rand::rng());
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let p = path(dir);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let text = zeroize::Zeroizing::new(hex::encode(pair.private_bytes().as_slice()));
    let written = opts.open(&p).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    });
    match written {
        Ok(()) => Ok((pair, true)),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load(dir)?
            .map(|k| (k, false))
            .ok_or_else(|| format!("cannot read {}", p.display())),
        Err(e) => Err(format!("cannot write the log key {}: {e}", p.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_private_and_reloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(load(dir.path()).expect("load").is_none());
        let (a, new) = load_or_create(dir.path()).expect("create");
        assert!(new);
        let (b, new) = load_or_create(dir.path()).expect("reload");
        assert!(!new);
        assert_eq!(a.public(), b.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path(dir.path()))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(path(dir.path()), "nonsense").expect("write");
        assert!(
            load(dir.path())
                .expect_err("not a key")
                .contains("not a log key")
        );
    }
}
