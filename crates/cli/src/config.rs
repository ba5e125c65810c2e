//! Files under the config directory: `config.toml` (optional settings), `dev.json` (written by
//! `clave dev`), `deploys.json` (code hashes recorded by `clave deploy`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the dev platform record.
pub const DEV_FILE: &str = "dev.json";
/// File name of the optional settings.
pub const CONFIG_FILE: &str = "config.toml";
/// File name of the deploy record.
pub const DEPLOYS_FILE: &str = "deploys.json";

/// `$CLAVE_CONFIG_DIR`, else the platform's configuration directory + `clave`: on Linux
/// `$XDG_CONFIG_HOME/clave`, else `~/.config/clave` (the `dirs` crate; on macOS
/// `~/Library/Application Support/clave`); `./.clave-config` when there is no home directory.
#[must_use]
pub fn config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CLAVE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    dirs::config_dir().map_or_else(|| PathBuf::from(".clave-config"), |d| d.join("clave"))
}

/// `config.toml`: every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Gateway URL.
    pub gateway: Option<String>,
    /// Deploy token.
    pub token: Option<String>,
    /// Project.
    pub project: Option<String>,
    /// Admin token (for `clave token create`).
    pub admin_token: Option<String>,
    /// Path to the KDS policy JSON.
    pub kds_policy: Option<PathBuf>,
    /// Path to the engine policy JSON.
    pub engine_policy: Option<PathBuf>,
    /// Path to a KDS admission policy JSON the user accepts.
    pub kds_admission_policy: Option<PathBuf>,
    /// Accept a KDS whose master secret came from an external key source.
    pub accept_external_master_secret: Option<bool>,
    /// Accept the simulated TEE.
    pub insecure_dev: Option<bool>,
    /// Cache age of a verified attestation, seconds.
    pub max_age_secs: Option<u64>,
}

impl ConfigFile {
    /// Load `dir/config.toml`; a missing file is the empty config.
    ///
    /// # Errors
    /// A file that exists but does not parse (the message names the file).
    pub fn load(dir: &Path) -> Result<Self, String> {
        let path = dir.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                format!(
                    "{} is not a valid config file: {}",
                    path.display(),
                    one_line(&e.to_string())
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }
}

/// What `clave dev` publishes for the other commands on the machine.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevRecord {
    /// Gateway URL, e.g. `http://127.0.0.1:8787`.
    pub gateway: String,
    /// Development deploy token of `project`.
    pub token: String,
    /// Admin token of the dev gateway (creates more deploy tokens).
    pub admin_token: String,
    /// Project the token belongs to.
    pub project: String,
    /// The simulated KDS measurement (hex).
    pub kds_measurement: String,
    /// The simulated engine measurement (hex).
    pub engine_measurement: String,
    /// Always `true`: the dev platform runs on the insecure simulated TEE.
    pub insecure: bool,
    /// The data directory of the platform.
    pub data_dir: String,
}

impl std::fmt::Debug for DevRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevRecord")
            .field("gateway", &self.gateway)
            .field("project", &self.project)
            .field("kds_measurement", &self.kds_measurement)
            .field("engine_measurement", &self.engine_measurement)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl DevRecord {
    /// Read `dir/dev.json` if it exists and parses.
    #[must_use]
    pub fn load(dir: &Path) -> Option<Self> {
        let text = std::fs::read(dir.join(DEV_FILE)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Write `dir/dev.json` (mode 0600: it holds tokens).
    ///
    /// # Errors
    /// I/O errors.
    pub fn store(&self, dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_private(&dir.join(DEV_FILE), &json)
    }
}

/// One recorded deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRecord {
    /// The code hash (hex).
    pub code_hash: String,
    /// The version the gateway assigned.
    pub version: i64,
    /// Unix seconds.
    pub deployed_at: u64,
}

/// The deploys recorded on this machine, keyed by `gateway project function`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Deploys {
    /// Records.
    pub functions: BTreeMap<String, DeployRecord>,
}

impl Deploys {
    fn key(gateway: &str, project: &str, function: &str) -> String {
        format!("{} {project} {function}", gateway.trim_end_matches('/'))
    }

    /// Load `dir/deploys.json` (empty when missing or unreadable).
    #[must_use]
    pub fn load(dir: &Path) -> Self {
        std::fs::read(dir.join(DEPLOYS_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The recorded deploy of a function.
    #[must_use]
    pub fn get(&self, gateway: &str, project: &str, function: &str) -> Option<&DeployRecord> {
        self.functions.get(&Self::key(gateway, project, function))
    }

    /// Record a deploy and save.
    ///
    /// # Errors
    /// I/O errors.
    pub fn record(
        dir: &Path,
        gateway: &str,
        project: &str,
        function: &str,
        rec: DeployRecord,
    ) -> std::io::Result<()> {
        let mut all = Self::load(dir);
        all.functions
            .insert(Self::key(gateway, project, function), rec);
        let json = serde_json::to_vec_pretty(&all).map_err(std::io::Error::other)?;
        write_private(&dir.join(DEPLOYS_FILE), &json)
    }
}

/// Write a file only the user can read, via a temp file and rename.
///
/// # Errors
/// I/O errors.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Collapse a multi-line message onto one line.
#[must_use]
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_parses_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().expect("tmp");
        assert!(
            ConfigFile::load(dir.path())
                .expect("missing is empty")
                .gateway
                .is_none()
        );
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "gateway = \"https://clave.example\"\nproject = \"shop\"\ninsecure_dev = false\nmax_age_secs = 60\n",
        )
        .expect("write");
        let c = ConfigFile::load(dir.path()).expect("valid");
        assert_eq!(c.gateway.as_deref(), Some("https://clave.example"));
        assert_eq!(c.project.as_deref(), Some("shop"));
        assert_eq!(c.max_age_secs, Some(60));
        std::fs::write(dir.path().join(CONFIG_FILE), "gatway = 1\n").expect("write");
        let e = ConfigFile::load(dir.path()).expect_err("unknown key");
        assert!(e.contains("config.toml"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }

    #[test]
    fn deploy_records_round_trip_and_dev_record_hides_tokens() {
        let dir = tempfile::tempdir().expect("tmp");
        let rec = DeployRecord {
            code_hash: "ab".repeat(32),
            version: 3,
            deployed_at: 1,
        };
        Deploys::record(dir.path(), "http://h:1/", "p", "f", rec.clone()).expect("store");
        assert_eq!(
            Deploys::load(dir.path()).get("http://h:1", "p", "f"),
            Some(&rec)
        );
        assert!(
            Deploys::load(dir.path())
                .get("http://h:2", "p", "f")
                .is_none()
        );
        let dev = DevRecord {
            gateway: "http://127.0.0.1:1".into(),
            token: "cdt_secret".into(),
            admin_token: "cat_secret".into(),
            project: "default".into(),
            kds_measurement: "00".into(),
            engine_measurement: "11".into(),
            insecure: true,
            data_dir: ".clave".into(),
        };
        assert!(!format!("{dev:?}").contains("secret"));
        dev.store(dir.path()).expect("store");
        assert_eq!(DevRecord::load(dir.path()), Some(dev));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(DEV_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "dev.json is private");
        }
    }
}
