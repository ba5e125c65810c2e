//! Settings resolution: which gateway, token, project and trust policy a command uses (flags
//! and environment, then `config.toml`, then the running `clave dev`'s record), the SDK client
//! built from them, and platform verification.

use std::path::PathBuf;
use std::sync::Arc;

use clave_attest::{Measurement, Policy, TeeKind};
use clave_client::{Client, TrustPolicy, Verified, now_unix};

use crate::cli::{Global, Origin};
use crate::config::{ConfigFile, DevRecord, one_line};
use crate::output::{CliError, ErrContext, Out, exit, from_client};
use crate::platform::{dev_engine_measurement, dev_kds_measurement};
use crate::project::Project;
use crate::server::read_policy;

/// Everything a command needs to know about where and whom to talk to.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) gateway: String,
    pub(crate) token: Option<String>,
    pub(crate) admin_token: Option<String>,
    pub(crate) project: String,
    pub(crate) dev: bool,
    pub(crate) insecure: bool,
    /// `None`: nothing pinned (no policy files and no --insecure-dev).
    pub(crate) trust: Option<TrustPolicy>,
}

/// Where a setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A command-line flag.
    Flag,
    /// An environment variable.
    Env(&'static str),
    /// config.toml in the config directory.
    ConfigFile,
    /// The running `clave dev`'s dev.json.
    DevRecord,
    /// The project file clave.toml.
    ProjectFile,
    /// Found by looking in the current directory and its parents.
    Found,
    /// Built in.
    Default,
}

/// The layered settings ([`Ctx::settings`]): each value with its [`Source`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) gateway: Option<(String, Source)>,
    pub(crate) token: Option<(String, Source)>,
    pub(crate) admin_token: Option<(String, Source)>,
    pub(crate) project: (String, Source),
    pub(crate) insecure_dev: (bool, Source),
    /// Accept a KDS whose master secret came from an external key source.
    pub(crate) accept_external_master_secret: (bool, Source),
    pub(crate) kds_policy: Option<(PathBuf, Source)>,
    pub(crate) engine_policy: Option<(PathBuf, Source)>,
    pub(crate) kds_admission_policy: Option<(PathBuf, Source)>,
    pub(crate) max_age_secs: Option<(u64, Source)>,
    /// The gateway is the running `clave dev`'s.
    pub(crate) dev: bool,
}

/// The flag's (or its environment variable's) value with `flag_source`, else the config file's.
fn layer<T>(flag: Option<T>, flag_source: Source, file: Option<T>) -> Option<(T, Source)> {
    flag.map(|v| (v, flag_source))
        .or_else(|| file.map(|v| (v, Source::ConfigFile)))
}

/// Shared state of one `clave` run.
pub(crate) struct Ctx {
    pub(crate) out: Out,
    pub(crate) global: Global,
    pub(crate) dir: PathBuf,
    pub(crate) file: ConfigFile,
    pub(crate) dev: Option<DevRecord>,
    /// The project file, for the commands that read one.
    pub(crate) project: Option<Project>,
}

impl Ctx {
    /// Every layered setting with the layer it came from: flag or environment (clap), then
    /// config.toml, then the running `clave dev`'s record, then the default.
    pub(crate) fn settings(&self) -> Settings {
        let g = &self.global;
        let f = &self.file;
        let cli = |id: &'static str| {
            let env = Global::LAYERED
                .iter()
                .find(|(i, _)| *i == id)
                .map_or("", |(_, e)| *e);
            match g.origins.get(id) {
                Some(Origin::Env) => Source::Env(env),
                _ => Source::Flag,
            }
        };
        let pick = |id: &'static str, flag: Option<String>, file: Option<String>| {
            layer(flag, cli(id), file)
        };
        let pick_path = |id: &'static str, flag: &Option<PathBuf>, file: &Option<PathBuf>| {
            layer(flag.clone(), cli(id), file.clone())
        };
        let gateway = pick("gateway", g.gateway.clone(), f.gateway.clone()).or_else(|| {
            self.dev
                .as_ref()
                .map(|d| (d.gateway.clone(), Source::DevRecord))
        });
        let dev = gateway
            .as_ref()
            .filter(|(_, s)| *s == Source::DevRecord)
            .and(self.dev.as_ref());
        let insecure_dev = if g.insecure_dev {
            (true, cli("insecure_dev"))
        } else if f.insecure_dev == Some(true) {
            (true, Source::ConfigFile)
        } else if dev.is_some() {
            (true, Source::DevRecord)
        } else {
            (false, Source::Default)
        };
        let accept_external_master_secret = if g.accept_external_master_secret {
            (true, cli("accept_external_master_secret"))
        } else if f.accept_external_master_secret == Some(true) {
            (true, Source::ConfigFile)
        } else {
            (false, Source::Default)
        };
        Settings {
            accept_external_master_secret,
            token: pick("token", g.token.clone(), f.token.clone())
                .or_else(|| dev.map(|d| (d.token.clone(), Source::DevRecord))),
            admin_token: f
                .admin_token
                .clone()
                .map(|v| (v, Source::ConfigFile))
                .or_else(|| dev.map(|d| (d.admin_token.clone(), Source::DevRecord))),
            project: pick("project", g.project.clone(), f.project.clone())
                .or_else(|| dev.map(|d| (d.project.clone(), Source::DevRecord)))
                .unwrap_or_else(|| (crate::platform::DEV_PROJECT.to_owned(), Source::Default)),
            insecure_dev,
            kds_policy: pick_path("kds_policy", &g.kds_policy, &f.kds_policy),
            engine_policy: pick_path("engine_policy", &g.engine_policy, &f.engine_policy),
            kds_admission_policy: pick_path(
                "kds_admission_policy",
                &g.kds_admission_policy,
                &f.kds_admission_policy,
            ),
            max_age_secs: f.max_age_secs.map(|v| (v, Source::ConfigFile)),
            dev: dev.is_some(),
            gateway,
        }
    }

    pub(crate) fn target(&self) -> Result<Target, CliError> {
        let s = self.settings();
        let Some((gateway, _)) = s.gateway else {
            return Err(CliError::usage(
                "no gateway configured: start `clave dev` in another terminal (it publishes its URL), or pass --gateway URL (or set CLAVE_GATEWAY).",
            ));
        };
        let dev = s.dev;
        let token = s.token.map(|(v, _)| v);
        let admin_token = s.admin_token.map(|(v, _)| v);
        let project = s.project.0;
        let insecure = s.insecure_dev.0;
        let kds_file = s.kds_policy.map(|(v, _)| v);
        let engine_file = s.engine_policy.map(|(v, _)| v);
        let admission = s.kds_admission_policy.map(|(v, _)| v);
        let max_age = s
            .max_age_secs
            .map(|(v, _)| std::time::Duration::from_secs(v));
        let trust = if insecure {
            // The dev measurements: from the dev record when it is this gateway, else the fixed,
            // published development constants (`clave dev` always uses them).
            let rec = self.dev.as_ref().filter(|d| d.gateway == gateway);
            let kds_m = rec
                .and_then(|d| Measurement::from_hex(&d.kds_measurement).ok())
                .unwrap_or_else(dev_kds_measurement);
            let eng_m = rec
                .and_then(|d| Measurement::from_hex(&d.engine_measurement).ok())
                .unwrap_or_else(dev_engine_measurement);
            let mut t = TrustPolicy::insecure_dev(kds_m, [eng_m])
                .map_err(|e| CliError::usage(format!("invalid dev trust policy: {e}")))?;
            if let Some(p) = &kds_file {
                t.kds_policy = read_policy(p, "KDS")?;
            }
            if let Some(p) = &engine_file {
                t.engine_policy = read_policy(p, "engine")?;
            }
            Some(t)
        } else {
            match (&kds_file, &engine_file) {
                (Some(k), Some(e)) => Some(TrustPolicy::new(
                    read_policy(k, "KDS")?,
                    read_policy(e, "engine")?,
                )),
                (None, None) => None,
                _ => {
                    return Err(CliError::usage(
                        "give both --kds-policy and --engine-policy (or neither, with --insecure-dev for a development platform).",
                    ));
                }
            }
        };
        let trust = match trust {
            Some(t) => Some(match &admission {
                Some(p) => t.accept_kds_admission_policy(read_policy(p, "KDS admission")?),
                None => t,
            }),
            None => None,
        };
        let trust = trust.map(|t| {
            if s.accept_external_master_secret.0 {
                t.accept_external_master_secret()
            } else {
                t
            }
        });
        let trust = trust.map(|t| match max_age {
            Some(a) => t.with_max_age(a),
            None => t,
        });
        let target = Target {
            gateway,
            token,
            admin_token,
            project,
            dev,
            insecure,
            trust,
        };
        if target.dev {
            self.out.insecure(&format!(
                "using the local clave dev platform at {} (nothing is confidential)",
                target.gateway
            ));
        } else if target.insecure {
            self.out
                .insecure("--insecure-dev accepts evidence anyone can forge (development only)");
        }
        Ok(target)
    }

    /// The function name of the project file, if any.
    pub(crate) fn project_name(&self) -> Option<String> {
        self.project.as_ref().and_then(|p| p.file.name.clone())
    }

    pub(crate) fn client(&self, t: &Target) -> Result<Client, CliError> {
        // With nothing pinned the client is only used to probe (explain the refusal); this
        // policy admits nothing real.
        let trust = match &t.trust {
            Some(tr) => tr.clone(),
            None => TrustPolicy::new(unpinned_policy()?, unpinned_policy()?),
        };
        Client::new(&t.gateway, trust).map_err(|e| CliError::usage(one_line(&e.to_string())))
    }

    pub(crate) fn err_ctx(&self, t: &Target, function: Option<&str>) -> ErrContext {
        ErrContext {
            function: function.map(str::to_owned),
            project: t.project.clone(),
            dev: t.dev,
        }
    }

    pub(crate) fn need_token<'a>(&self, t: &'a Target, what: &str) -> Result<&'a str, CliError> {
        t.token.as_deref().ok_or_else(|| {
            CliError::usage(format!(
                "{what} needs a deploy token: pass --token or set CLAVE_TOKEN (`clave dev` writes one for its platform)."
            ))
        })
    }

    /// Verify the platform (fresh nonce), or explain why it cannot be trusted.
    pub(crate) async fn verify(
        &self,
        client: &Client,
        t: &Target,
    ) -> Result<Arc<Verified>, CliError> {
        let ectx = self.err_ctx(t, None);
        if t.trust.is_none() {
            let claim = client.probe().await.map_err(|e| from_client(&e, &ectx))?;
            return Err(if claim.kind == TeeKind::InsecureSimulated {
                CliError::new(
                    exit::ATTESTATION,
                    format!(
                        "attestation refused, nothing was sent: the platform at {} runs on the INSECURE simulated TEE; pass --insecure-dev to accept it for local development.",
                        t.gateway
                    ),
                )
            } else {
                CliError::new(
                    exit::ATTESTATION,
                    format!(
                        "attestation cannot be checked, nothing was sent: the platform claims a {} TEE but no trust policy is configured; pass --kds-policy and --engine-policy (or set them in config.toml).",
                        claim.kind
                    ),
                )
            });
        }
        let pb = self.out.spinner("verifying the platform's attestation…");
        let r = client.verify(now_unix()).await;
        pb.finish_and_clear();
        r.map_err(|e| from_client(&e, &ectx))
    }
}

fn unpinned_policy() -> Result<Policy, CliError> {
    Policy::measurements([TeeKind::SevSnp], [Measurement(vec![0; 32])])
        .map_err(|e| CliError::usage(e.to_string()))
}
