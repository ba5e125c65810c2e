//! The `env` object of a call: the manifest's plain `vars` and the sealed secrets it names,
//! opened inside the engine with the code keys. Opened environments are kept in memory only,
//! keyed by a digest of everything they depend on (project, manifest, sealed secrets), so a
//! call of a function whose secrets did not change costs one SHA-256 and a map lookup; a secret
//! put or deleted at the gateway changes the sealed set and thereby the key.

use std::collections::HashMap;

use clave_proto::code::Manifest;
use clave_proto::secret::{SecretScope, SecretSet, open_secret};
use clave_proto::{FunctionName, InvokeError, ProblemKind, ProjectName, ServerKey};
use sha2::{Digest, Sha256};

/// Most environments kept; when full, all are dropped at once (they are cheap to rebuild).
const MAX_ENTRIES: usize = 1024;

/// Opened environments by [`env_key`].
#[derive(Default)]
pub(crate) struct EnvCache {
    map: HashMap<[u8; 32], clave_sandbox::Env>,
}

impl std::fmt::Debug for EnvCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvCache")
            .field("entries", &self.map.len())
            .finish()
    }
}

impl EnvCache {
    pub(crate) fn get(&self, key: &[u8; 32]) -> Option<clave_sandbox::Env> {
        self.map.get(key).cloned()
    }

    pub(crate) fn insert(&mut self, key: [u8; 32], env: clave_sandbox::Env) {
        if self.map.len() >= MAX_ENTRIES {
            self.map.clear();
        }
        self.map.insert(key, env);
    }
}

/// What an environment depends on: the project, the manifest (vars, secret names, function) and
/// the sealed secrets handed over with the job.
pub(crate) fn env_key(project: &str, manifest_digest: &[u8; 32], secrets: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"clave/v1/env-cache\0");
    h.update((project.len() as u64).to_be_bytes());
    h.update(project.as_bytes());
    h.update(manifest_digest);
    h.update(secrets);
    h.finalize().into()
}

fn refused(detail: String) -> InvokeError {
    InvokeError::new(ProblemKind::Internal, Some(detail))
}

/// Build the environment: every var, then every secret the manifest names that the job carries
/// (the function's own before a project-wide one of the same name). A secret that is not named
/// in the manifest is neither opened nor passed. A named secret that does not open for exactly
/// this project, function, name and version refuses the call.
pub(crate) fn build_env(
    keys: &[ServerKey],
    project: &ProjectName,
    manifest: &Manifest,
    secrets: &[u8],
) -> Result<clave_sandbox::Env, InvokeError> {
    let mut env: Vec<(String, String)> = manifest
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !manifest.secrets.is_empty() && !secrets.is_empty() {
        let set = SecretSet::decode(secrets)
            .map_err(|_| refused("the platform supplied an unreadable secret set".to_owned()))?;
        for name in &manifest.secrets {
            let own = set
                .secrets
                .iter()
                .find(|s| s.function_scoped && s.name == *name);
            let shared = || {
                set.secrets
                    .iter()
                    .find(|s| !s.function_scoped && s.name == *name)
            };
            let Some(s) = own.or_else(shared) else {
                continue;
            };
            let scope = SecretScope {
                project: project.clone(),
                function: s.function_scoped.then(|| manifest.name.clone()),
                name: name.clone(),
                version: s.version,
            };
            let value = open_secret(keys, &scope, &s.sealed).map_err(|_| {
                refused(format!(
                    "the secret {name} (version {}) does not open for {}: it was sealed for \
                     another project, function, name or version, or to a retired code key; \
                     set it again with `clave secret put {name}`",
                    s.version,
                    where_(project, scope.function.as_ref())
                ))
            })?;
            let text = String::from_utf8(value.to_vec())
                .map_err(|_| refused(format!("the secret {name} is not UTF-8 text")))?;
            env.push((name.clone(), text));
        }
    }
    Ok(env.into())
}

fn where_(project: &ProjectName, function: Option<&FunctionName>) -> String {
    match function {
        Some(f) => format!("function {project}/{f}"),
        None => format!("project {project}"),
    }
}
