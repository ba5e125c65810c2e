//! The management calls of [`Client`]: functions, versions, tokens, health.

use clave_proto::CodeHash;
use clave_proto::gateway_api::{
    ActivateRequest, ActivateResponse, CreateTokenResponse, FunctionDetail, FunctionList,
};

use crate::client::{Client, parse_function, parse_json, parse_project};
use crate::error::{ClientError, Result};

impl Client {
    /// `GET /v1/projects/{project}/functions`.
    ///
    /// # Errors
    /// Transport and gateway errors.
    pub async fn list_functions(&self, project: &str, token: &str) -> Result<FunctionList> {
        let project = parse_project(project)?;
        self.get_json(&format!("/v1/projects/{project}/functions"), Some(token))
            .await
    }

    /// `GET /v1/projects/{project}/functions/{name}`: versions and the active one.
    ///
    /// # Errors
    /// Transport and gateway errors.
    pub async fn function(&self, project: &str, name: &str, token: &str) -> Result<FunctionDetail> {
        let project = parse_project(project)?;
        let function = parse_function(name)?;
        self.get_json(
            &format!("/v1/projects/{project}/functions/{function}"),
            Some(token),
        )
        .await
    }

    /// The code hash of the active version, as the gateway reports it (unverified: the engine
    /// still checks the pin, but this reads what the operator says is current).
    ///
    /// # Errors
    /// Transport and gateway errors; [`ClientError::Gateway`] 404 when nothing is active.
    pub async fn active_code_hash(
        &self,
        project: &str,
        name: &str,
        token: &str,
    ) -> Result<(i64, CodeHash)> {
        let detail = self.function(project, name, token).await?;
        let v = detail
            .versions
            .iter()
            .find(|v| Some(v.version) == detail.active_version)
            .ok_or(ClientError::Gateway {
                status: 404,
                problem: None,
            })?;
        let hash = v.code_hash.parse().map_err(|_| {
            ClientError::Protocol("the gateway reported a malformed code hash".into())
        })?;
        Ok((v.version, hash))
    }

    /// `POST .../activate`.
    ///
    /// # Errors
    /// Transport and gateway errors.
    pub async fn activate(
        &self,
        project: &str,
        name: &str,
        version: i64,
        token: &str,
    ) -> Result<ActivateResponse> {
        let project = parse_project(project)?;
        let function = parse_function(name)?;
        let req = self
            .http
            .post(self.url(&format!(
                "/v1/projects/{project}/functions/{function}/activate"
            )))
            .bearer_auth(token)
            .json(&ActivateRequest { version });
        let (_, body) = self.send(req).await?;
        parse_json(&body, "activate")
    }

    /// `POST .../rollback`: make the previous version active.
    ///
    /// # Errors
    /// Transport and gateway errors.
    pub async fn rollback(
        &self,
        project: &str,
        name: &str,
        token: &str,
    ) -> Result<ActivateResponse> {
        let project = parse_project(project)?;
        let function = parse_function(name)?;
        let req = self
            .http
            .post(self.url(&format!(
                "/v1/projects/{project}/functions/{function}/rollback"
            )))
            .bearer_auth(token);
        let (_, body) = self.send(req).await?;
        parse_json(&body, "rollback")
    }

    /// `DELETE .../functions/{name}`.
    ///
    /// # Errors
    /// Transport and gateway errors.
    pub async fn delete(&self, project: &str, name: &str, token: &str) -> Result<()> {
        let project = parse_project(project)?;
        let function = parse_function(name)?;
        let req = self
            .http
            .delete(self.url(&format!("/v1/projects/{project}/functions/{function}")))
            .bearer_auth(token);
        self.send(req).await.map(|_| ())
    }

    /// `POST /v1/projects/{project}/tokens` with the admin token: a new deploy token.
    ///
    /// # Errors
    /// Transport and gateway errors.
    pub async fn create_token(
        &self,
        project: &str,
        admin_token: &str,
    ) -> Result<CreateTokenResponse> {
        let project = parse_project(project)?;
        let req = self
            .http
            .post(self.url(&format!("/v1/projects/{project}/tokens")))
            .bearer_auth(admin_token);
        let (_, body) = self.send(req).await?;
        parse_json(&body, "create token")
    }

    /// Whether the gateway answers `/healthz`.
    ///
    /// # Errors
    /// Transport errors.
    pub async fn health(&self) -> Result<()> {
        self.send(self.http.get(self.url("/healthz")))
            .await
            .map(|_| ())
    }
}
