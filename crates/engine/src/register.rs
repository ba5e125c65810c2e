//! Registration with gateways (`clave engine --register-with URL`): a heartbeat that keeps this
//! engine in each gateway's pool (`POST /v1/engines/register` with the admin token, renewed
//! before the gateway's TTL runs out), and a deregistration on shutdown. Only the engine's
//! advertised URL travels; nothing about calls.

use std::time::Duration;

use clave_proto::gateway_api::{EngineRegisterRequest, EngineRegisterResponse};

/// The HTTP client of the engine's calls to gateways (registration, developer log records).
pub(crate) fn http_client() -> Option<reqwest::Client> {
    clave_proto::rt::ensure_rustls_provider();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(20))
        .build()
        .ok()
}

/// Register `advertise` with the gateway at `gateway` (base URL) and keep renewing it, every
/// `every` seconds or a third of the TTL the gateway answers. Runs until aborted; logs when the
/// registration starts, is refused, or the gateway becomes unreachable.
pub async fn heartbeat_loop(gateway: String, advertise: String, token: String, every: Option<u64>) {
    let Some(http) = http_client() else { return };
    let url = format!("{gateway}/v1/engines/register");
    let mut registered = false;
    loop {
        let resp = http
            .post(&url)
            .bearer_auth(&token)
            .json(&EngineRegisterRequest {
                url: advertise.clone(),
            })
            .send()
            .await;
        let pause = match resp {
            Ok(r) if r.status().is_success() => {
                let ttl = r
                    .json::<EngineRegisterResponse>()
                    .await
                    .map_or(30, |a| a.ttl_secs.max(1));
                if !registered {
                    tracing::info!(%gateway, ttl, "registered with gateway");
                    registered = true;
                }
                Duration::from_secs(every.unwrap_or(ttl / 3).clamp(1, ttl.max(1)))
            }
            Ok(r) => {
                tracing::warn!(%gateway, status = %r.status(), "gateway refused the registration");
                registered = false;
                Duration::from_secs(5)
            }
            Err(e) => {
                if registered {
                    tracing::warn!(%gateway, error = %e, "gateway unreachable");
                }
                registered = false;
                Duration::from_secs(1)
            }
        };
        tokio::time::sleep(pause).await;
    }
}

/// Remove `advertise` from each gateway's pool (best effort, 2 s per gateway).
pub async fn deregister_all(gateways: &[String], advertise: &str, token: &str) {
    let Some(http) = http_client() else { return };
    for g in gateways {
        let _ = http
            .post(format!("{g}/v1/engines/deregister"))
            .bearer_auth(token)
            .timeout(Duration::from_secs(2))
            .json(&EngineRegisterRequest {
                url: advertise.to_owned(),
            })
            .send()
            .await;
    }
}
