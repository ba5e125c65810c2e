//! The developer loop: sealed secrets (sealed here, to the verified code key, before they leave
//! the machine), the developer log key, and sealed log records.

use clave_proto::devlog::LogPublicKey;
use clave_proto::devloop_api::{LogKeyBody, LogPage, PutSecretRequest, SecretEntry, SecretList};
use clave_proto::secret::{SecretScope, seal_secret};

use crate::client::{Client, now_unix, parse_function, parse_json, parse_project, rng};
use crate::error::{ClientError, Result};

/// Which log records to read ([`Client::logs`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogsRequest {
    /// Only this function's.
    pub function: Option<String>,
    /// Only records after this id.
    pub after: i64,
    /// Only records stored at or after this unix second.
    pub since: i64,
    /// At most this many.
    pub limit: i64,
    /// Wait up to this many seconds for a first record (long poll; at most 30).
    pub wait_secs: u64,
}

fn function_query(function: Option<&str>) -> String {
    function.map_or_else(String::new, |f| format!("?function={f}"))
}

impl Client {
    /// The stored version of a secret (0 if never set), without its value.
    ///
    /// # Errors
    /// Transport and gateway errors.
    pub async fn secret(
        &self,
        project: &str,
        function: Option<&str>,
        name: &str,
        token: &str,
    ) -> Result<SecretEntry> {
        let project = parse_project(project)?;
        if let Some(f) = function {
            parse_function(f)?;
        }
        self.get_json(
            &format!(
                "/v1/projects/{project}/secrets/{name}{}",
                function_query(function)
            ),
            Some(token),
        )
        .await
    }

    /// Seal `value` to the verified code key for `project` (and `function`, or project-wide),
    /// `name` and the next version, and store it. The gateway gets ciphertext only.
    ///
    /// # Errors
    /// [`ClientError::InvalidInput`] for a bad name or a value over 32 KiB; attestation,
    /// transport and gateway errors.
    pub async fn put_secret(
        &self,
        project: &str,
        function: Option<&str>,
        name: &str,
        value: &[u8],
        token: &str,
    ) -> Result<SecretEntry> {
        let project_name = parse_project(project)?;
        let function_name = function.map(parse_function).transpose()?;
        if !clave_proto::secret::is_valid_secret_name(name) {
            return Err(ClientError::InvalidInput(format!(
                "{name:?} is not a valid secret name: use 1 to 64 characters of A-Z, a-z, 0-9 \
                 and _, not starting with a digit"
            )));
        }
        let verified = self.verified(now_unix()).await?;
        let mut last = None;
        // One retry when another writer stored a version meanwhile.
        for _ in 0..2 {
            let current = self.secret(project, function, name, token).await?;
            let version = current.version + 1;
            let scope = SecretScope {
                project: project_name.clone(),
                function: function_name.clone(),
                name: name.to_owned(),
                version: u64::try_from(version).unwrap_or(1),
            };
            let sealed = seal_secret(&verified.code_key.key_config, &scope, value, &mut rng())
                .map_err(|e| ClientError::InvalidInput(format!("cannot seal the secret: {e}")))?;
            let body = PutSecretRequest {
                function: function.map(str::to_owned),
                version,
                sealed,
            };
            let req = self
                .http
                .put(self.url(&format!("/v1/projects/{project_name}/secrets/{name}")))
                .bearer_auth(token)
                .json(&body);
            match self.send(req).await {
                Ok((_, answer)) => return parse_json(&answer, "secret"),
                Err(e @ ClientError::Gateway { status: 409, .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Protocol("secret put failed".into())))
    }

    /// Secrets of a project: names, versions, times (never values).
    ///
    /// # Errors
    /// Transport and gateway errors.
    pub async fn list_secrets(&self, project: &str, token: &str) -> Result<SecretList> {
        let project = parse_project(project)?;
        self.get_json(&format!("/v1/projects/{project}/secrets"), Some(token))
            .await
    }

    /// Delete a secret's value.
    ///
    /// # Errors
    /// [`ClientError::Gateway`] 404 when there is none; transport errors.
    pub async fn delete_secret(
        &self,
        project: &str,
        function: Option<&str>,
        name: &str,
        token: &str,
    ) -> Result<()> {
        let project = parse_project(project)?;
        if let Some(f) = function {
            parse_function(f)?;
        }
        let req = self
            .http
            .delete(self.url(&format!(
                "/v1/projects/{project}/secrets/{name}{}",
                function_query(function)
            )))
            .bearer_auth(token);
        self.send(req).await.map(drop)
    }

    /// Register the project's developer log public key.
    ///
    /// # Errors
    /// Transport and gateway errors.
    pub async fn register_log_key(
        &self,
        project: &str,
        key: &LogPublicKey,
        token: &str,
    ) -> Result<()> {
        let project = parse_project(project)?;
        let req = self
            .http
            .put(self.url(&format!("/v1/projects/{project}/log-key")))
            .bearer_auth(token)
            .json(&LogKeyBody {
                public_key: key.to_hex(),
            });
        self.send(req).await.map(drop)
    }

    /// The project's registered developer log public key, if any.
    ///
    /// # Errors
    /// Transport and gateway errors.
    pub async fn log_key(&self, project: &str, token: &str) -> Result<Option<LogPublicKey>> {
        let project = parse_project(project)?;
        match self
            .get_json::<LogKeyBody>(&format!("/v1/projects/{project}/log-key"), Some(token))
            .await
        {
            Ok(b) => LogPublicKey::from_hex(&b.public_key)
                .map(Some)
                .map_err(|_| {
                    ClientError::Protocol("the gateway returned a malformed log key".into())
                }),
            Err(ClientError::Gateway { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sealed log records of a project (open them with the developer log key pair).
    ///
    /// # Errors
    /// Transport and gateway errors.
    pub async fn logs(&self, project: &str, q: &LogsRequest, token: &str) -> Result<LogPage> {
        let project = parse_project(project)?;
        let mut path = format!(
            "/v1/projects/{project}/logs?after={}&since={}&limit={}&wait={}",
            q.after,
            q.since,
            q.limit.max(1),
            q.wait_secs
        );
        if let Some(f) = &q.function {
            parse_function(f)?;
            path.push_str("&function=");
            path.push_str(f);
        }
        self.get_json(&path, Some(token)).await
    }
}
