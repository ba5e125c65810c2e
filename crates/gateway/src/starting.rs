//! A gateway that answers while it starts: the key routes (`/.well-known/ohttp-gateway`,
//! `/v1/keys`, `/v1/attestation`) need only the KDS, so they are served from the moment the
//! listener is, and a client verifies the platform while the database opens. Every other request
//! waits (at most [`HOLD`]) for the whole gateway, then goes to it; a gateway that does not come
//! up answers them 503 + `Retry-After`.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures_util::future::{BoxFuture, Either};
use tower::{Service, ServiceExt as _};

use crate::kds_proxy::KeySource;
use crate::routes::{KEY_PATHS, key_router};
use crate::{ApiError, AppState, app};

/// How long a request other than the key routes waits for the gateway to finish starting.
pub const HOLD: Duration = Duration::from_secs(10);

/// Suggested wait when a held request is refused.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Requests held at once while the gateway starts; more are refused at once (503) instead of
/// piling up for [`HOLD`] (before this server, they waited in the listener's bounded backlog).
pub(crate) const MAX_HELD: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Starting,
    Ready,
    Stopped,
}

struct Inner {
    /// The key routes alone.
    early: Router,
    /// The whole gateway and its state, once started.
    full: OnceLock<(Router, AppState)>,
    phase: tokio::sync::watch::Sender<Phase>,
    /// Room for held requests ([`MAX_HELD`]).
    held: Arc<tokio::sync::Semaphore>,
}

/// A gateway being started: serve it with [`serve_starting`](crate::serve_starting) at once, then
/// hand it the rest with [`Starting::ready`] (or [`Starting::stop`] if that fails).
#[derive(Clone)]
pub struct Starting {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Starting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Starting")
            .field("phase", &*self.inner.phase.borrow())
            .finish_non_exhaustive()
    }
}

impl Starting {
    /// A gateway that so far serves only the key routes, from `keys`.
    #[must_use]
    pub fn new(keys: Arc<dyn KeySource>) -> Self {
        Self::with_max_held(keys, MAX_HELD)
    }

    fn with_max_held(keys: Arc<dyn KeySource>, max_held: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                early: key_router(keys),
                full: OnceLock::new(),
                phase: tokio::sync::watch::Sender::new(Phase::Starting),
                held: Arc::new(tokio::sync::Semaphore::new(max_held)),
            }),
        }
    }

    /// A gateway that is ready now: [`app`] of `state` with `extra` routes merged in.
    #[must_use]
    pub fn serving(state: AppState, extra: Router) -> Self {
        let starting = Self::new(state.inner.keys.clone());
        starting.ready(state, extra);
        starting
    }

    /// The rest of the gateway is here: from now on every request goes to [`app`] of `state`
    /// with `extra` routes merged in (no fallback, no route of the API: see
    /// [`serve_with`](crate::serve_with)), and the held ones are released to it. Only the first
    /// call counts.
    pub fn ready(&self, state: AppState, extra: Router) {
        if *self.inner.phase.borrow() == Phase::Stopped {
            return;
        }
        let router = extra.merge(app(state.clone()));
        if self.inner.full.set((router, state)).is_ok() {
            self.inner.phase.send_if_modified(|p| {
                let starting = *p == Phase::Starting;
                if starting {
                    *p = Phase::Ready;
                }
                starting
            });
        }
    }

    /// The gateway will not come up (or is shutting down before it did): held requests are
    /// answered 503 + `Retry-After` now.
    pub fn stop(&self) {
        self.inner.phase.send_if_modified(|p| {
            let starting = *p == Phase::Starting;
            if starting {
                *p = Phase::Stopped;
            }
            starting
        });
    }

    /// The state of the whole gateway, once [`Starting::ready`].
    pub(crate) fn state(&self) -> Option<&AppState> {
        self.inner.full.get().map(|(_, s)| s)
    }

    pub(crate) fn service(&self) -> StartingService {
        StartingService {
            inner: self.inner.clone(),
        }
    }
}

/// The service [`serve_starting`](crate::serve_starting) serves.
#[derive(Clone)]
pub(crate) struct StartingService {
    inner: Arc<Inner>,
}

impl Service<Request> for StartingService {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<
        <Router as Service<Request>>::Future,
        BoxFuture<'static, Result<Response, Infallible>>,
    >;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // Once started: straight to the gateway (one atomic load more than serving it directly).
        if let Some((router, _)) = self.inner.full.get() {
            return Either::Left(router.clone().call(req));
        }
        if KEY_PATHS.contains(&req.uri().path()) {
            return Either::Left(self.inner.early.clone().call(req));
        }
        let inner = self.inner.clone();
        let Ok(permit) = inner.held.clone().try_acquire_owned() else {
            return Either::Right(Box::pin(async { Ok(unavailable()) }));
        };
        Either::Right(Box::pin(async move {
            let _permit = permit;
            let mut phase = inner.phase.subscribe();
            let _ = tokio::time::timeout(HOLD, phase.wait_for(|p| *p != Phase::Starting)).await;
            match inner.full.get() {
                Some((router, _)) => router.clone().oneshot(req).await,
                None => Ok(unavailable()),
            }
        }))
    }
}

fn unavailable() -> Response {
    ApiError::Unavailable {
        retry_after: RETRY_AFTER,
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kds_proxy::KeySourceError;

    struct NoKeys;

    impl KeySource for NoKeys {
        fn key_configs(&self) -> crate::BoxFuture<'_, Result<Vec<u8>, KeySourceError>> {
            Box::pin(async { Err(KeySourceError::Unavailable) })
        }
        fn bundles(&self) -> crate::BoxFuture<'_, Result<Vec<u8>, KeySourceError>> {
            Box::pin(async { Err(KeySourceError::Unavailable) })
        }
        fn attestation(&self, _: String) -> crate::BoxFuture<'_, Result<Vec<u8>, KeySourceError>> {
            Box::pin(async { Err(KeySourceError::Unavailable) })
        }
    }

    fn get(path: &str) -> Request {
        axum::http::Request::builder()
            .uri(path)
            .body(axum::body::Body::empty())
            .expect("request")
    }

    /// Beyond the cap, a request that would be held is refused at once; a held one that leaves
    /// (here: refused when the start is stopped) makes room again.
    #[tokio::test]
    async fn held_requests_are_capped() {
        let starting = Starting::with_max_held(Arc::new(NoKeys), 2);
        let mut svc = starting.service();
        let first = tokio::spawn(svc.call(get("/healthz")));
        let second = tokio::spawn(svc.call(get("/v1/functions")));
        tokio::task::yield_now().await;
        // At once: not after the hold.
        let third = tokio::time::timeout(Duration::from_millis(500), svc.call(get("/healthz")))
            .await
            .expect("refused at once, not held")
            .expect("infallible");
        assert_eq!(third.status(), 503, "the third is over the cap");
        assert!(third.headers().contains_key("retry-after"));
        assert!(
            !first.is_finished() && !second.is_finished(),
            "the first two are held"
        );
        starting.stop();
        for held in [first, second] {
            assert_eq!(held.await.expect("task").expect("infallible").status(), 503);
        }
        assert_eq!(
            starting.inner.held.available_permits(),
            2,
            "both places are free again"
        );
    }
}
