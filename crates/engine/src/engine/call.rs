//! The request path of [`Engine`]: decapsulate, check (date, replay, mode, route, code hash),
//! open the code and the call's `env`, run, seal.

use super::*;

impl Engine {
    /// Run one job at time `now` and return the `message/ohttp-res` body.
    ///
    /// Returned in the clear (and carrying no content) are only: [`Error::UnknownKeyId`] and
    /// [`Error::Undecryptable`] (the outer envelope; nothing ran), [`Error::NotReady`] and
    /// [`Error::Overloaded`] (nothing ran, retry later), [`Error::ClockBehind`] (the host's clock
    /// is behind the engine's clock floor; nothing ran), and [`Error::Seal`] (a bug). Every other
    /// failure — malformed inner request, stale `date`, replay, wrong function, code that does
    /// not open or does not match the pinned `clave-code-hash` (the function is then not run),
    /// sandbox limits and script errors — is sealed to the user as a problem.
    ///
    /// A replayed encapsulation is refused, even if it is the same job delivered twice: the
    /// function never runs twice for one request. For jobs flagged
    /// [`clave_proto::gateway_api::JobFlags::ASYNC`] (the at-least-once queue) the engine holds
    /// the sealed response of the first run (bounded, [`EngineConfig::async_result_secs`]) and
    /// answers a redelivery with exactly those bytes; a redelivery that arrives while the first
    /// run is still going is answered [`Error::Overloaded`] (nothing ran; deliver again later);
    /// once the engine no longer holds the result, the redelivery is refused like any replay, so
    /// the queue must also keep the first result.
    ///
    /// # Errors
    /// As above.
    pub async fn invoke(&self, job: EngineJob, now: u64) -> Result<Vec<u8>, Error> {
        // The date check below trusts `now`: never below the floor (minus the allowed skew).
        if let Some(floor) = self.clock_floor.get() {
            floor.observe(now)?;
        }
        if job.flags.is_insecure_plaintext_bench() {
            if !self.config.insecure_plaintext_bench || job.flags.is_async() {
                return Err(Error::PlaintextRefused);
            }
            return self.invoke_insecure_plaintext(job, now).await;
        }
        let started = Instant::now();
        let ring = self.ring().ok_or(Error::NotReady)?;
        let (bhttp, responder) =
            decapsulate_invoke(&ring.invoke, &job.request).map_err(|e| match e {
                clave_proto::Error::UnknownKeyId(id) => Error::UnknownKeyId(id),
                _ => Error::Undecryptable,
            })?;
        let bhttp = Zeroizing::new(bhttp);
        let replay_id = responder.replay_id();
        let is_async = job.flags.is_async();
        if is_async && let Some(first) = lock(&self.async_results).get(&replay_id, now) {
            tracing::debug!(
                function = %job.function,
                is_async,
                response_bytes = first.len(),
                "invoke"
            );
            return Ok(first.as_ref().clone());
        }
        let in_flight = if is_async {
            if !lock(&self.async_in_flight).insert(replay_id) {
                // The first delivery is still running here: nothing ran for this one.
                return Err(Error::Overloaded);
            }
            Some(InFlight {
                set: Arc::clone(&self.async_in_flight),
                id: replay_id,
            })
        } else {
            None
        };
        let sink = self.log_sink();
        let mut log = CallLog::default();
        let (result, recorded) = self
            .handle(&ring, &job, &bhttp, replay_id, now, &mut log)
            .await?;
        let sealed = seal(&responder, &result)?;
        if let Some(sink) = sink {
            let ts_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            if let Some(pending) = log.finish(&result, ts_ms.saturating_sub(us / 1000), us) {
                // Sealed after the answer is on its way: not on the call's latency path.
                tokio::spawn(async move {
                    if let Some(sealed) = pending.seal() {
                        sink(sealed);
                    }
                });
            }
        }
        if is_async && recorded {
            let hold = self
                .config
                .async_result_secs
                .max(self.config.replay_window_secs().saturating_mul(2));
            lock(&self.async_results).insert(
                replay_id,
                sealed.clone(),
                now.saturating_add(hold),
                now,
            );
        }
        // Only now, with the result held, may a redelivery be answered from `async_results`.
        drop(in_flight);
        // No outcome here: whether the call succeeded, threw, timed out, was stale, replayed or
        // pinned another hash travels only sealed to the caller. The host sees what it sees
        // anyway: the function name, sizes and timing. At debug level: a line per call costs
        // about as much CPU as the rest of the host's work on a call (formatting and a write to
        // stderr); counts and durations are in the gateway's metrics.
        tracing::debug!(
            function = %job.function,
            is_async,
            request_bytes = job.request.len(),
            response_bytes = sealed.len(),
            ms = started.elapsed().as_millis(),
            "invoke"
        );
        Ok(sealed)
    }

    /// Everything after decapsulation: the outcome, and whether the request was recorded in
    /// the replay cache (it then counts as "the first run"). `Err` only for the clear
    /// "overloaded" refusal.
    async fn handle(
        &self,
        ring: &KeyRing,
        job: &EngineJob,
        bhttp: &[u8],
        replay_id: clave_proto::ReplayId,
        now: u64,
        log: &mut CallLog,
    ) -> Result<(Result<InvokeResponse, InvokeError>, bool), Error> {
        let req = match InvokeRequest::from_bhttp(bhttp) {
            Ok(r) => r,
            Err(e) => return Ok((Err(problem(ProblemKind::BadRequest, e.to_string())), false)),
        };
        if let Err(p) = check_mode(&req, job.flags).and_then(|()| self.check_date(&req, now)) {
            self.authenticate_log_key(ring, job, &req, log);
            return Ok((Err(p), false));
        }
        let verdict = lock(&self.replay).check_and_insert(
            replay_id,
            req.date
                .saturating_add(self.config.date_window_for(req.mode)),
            now,
        );
        match verdict {
            Verdict::Fresh => {}
            Verdict::Replayed => {
                self.authenticate_log_key(ring, job, &req, log);
                return Ok((Err(problem(ProblemKind::Replay, None)), false));
            }
            Verdict::Full => return Err(Error::Overloaded),
        }
        Ok((self.run_checked(ring, job, req, log).await, true))
    }

    /// For a call refused before it ran: learn the developer log key from the job's manifest
    /// if that manifest is the deployed one for this request (its project and function are the
    /// request's and its code opens), so that the refusal is logged too.
    fn authenticate_log_key(
        &self,
        ring: &KeyRing,
        job: &EngineJob,
        req: &InvokeRequest,
        log: &mut CallLog,
    ) {
        if self.log_sink().is_none() {
            return;
        }
        let digest = Manifest::digest(&job.manifest);
        let Some(parsed) = self.manifest(digest, &job.manifest) else {
            return;
        };
        let manifest = &parsed.manifest;
        if manifest.log_key.is_none()
            || manifest.name != req.function
            || manifest.project.as_ref() != Some(&req.project)
        {
            return;
        }
        if self
            .open_code(ring, &job.manifest, digest, &job.sealed_code, manifest)
            .is_ok()
        {
            log.note_request(req, manifest);
        }
    }

    /// The parsed manifest whose bytes have SHA-256 `digest`, from memory when seen before;
    /// `None` when the bytes do not parse.
    fn manifest(&self, digest: [u8; 32], bytes: &[u8]) -> Option<Arc<ParsedManifest>> {
        if let Some(m) = lock(&self.manifests).get(&digest) {
            return Some(m.clone());
        }
        let manifest = Manifest::from_bytes(bytes).ok()?;
        let m = Arc::new(ParsedManifest {
            outbound: Arc::from(manifest.outbound.as_slice()),
            manifest,
        });
        let mut cache = lock(&self.manifests);
        // Bounded like the code cache; a full map starts over (a parse is cheap, a miss rare).
        if cache.len() >= self.config.code_cache_entries.max(1) {
            cache.clear();
        }
        cache.insert(digest, m.clone());
        Some(m)
    }

    /// Refuse a `date` outside the window of the request's sealed mode.
    fn check_date(&self, req: &InvokeRequest, now: u64) -> Result<(), InvokeError> {
        let window = self.config.date_window_for(req.mode);
        if now.abs_diff(req.date) > window {
            return Err(problem(
                ProblemKind::StaleDate,
                format!("date must be within {window} s of the engine's clock"),
            ));
        }
        Ok(())
    }

    /// INSECURE benchmark path ([`EngineConfig::insecure_plaintext_bench`]): the job's request
    /// is plain BHTTP and so is the answer. The same checks, code opening and sandbox as
    /// [`Engine::invoke`]; only the OHTTP layer (and with it the replay id, which is derived
    /// from the encapsulation) is absent.
    async fn invoke_insecure_plaintext(&self, job: EngineJob, now: u64) -> Result<Vec<u8>, Error> {
        let started = Instant::now();
        let ring = self.ring().ok_or(Error::NotReady)?;
        let result = match InvokeRequest::from_bhttp(&job.request) {
            Err(e) => Err(problem(ProblemKind::BadRequest, e.to_string())),
            Ok(req) => {
                match check_mode(&req, job.flags).and_then(|()| self.check_date(&req, now)) {
                    Err(p) => Err(p),
                    Ok(()) => {
                        self.run_checked(&ring, &job, req, &mut CallLog::default())
                            .await
                    }
                }
            }
        };
        let plain = plain_response(&result)?;
        tracing::debug!(
            function = %job.function,
            insecure_plaintext = true,
            request_bytes = job.request.len(),
            response_bytes = plain.len(),
            ms = started.elapsed().as_millis(),
            "invoke"
        );
        Ok(plain)
    }

    /// Path and code checks, then the sandbox.
    async fn run_checked(
        &self,
        ring: &KeyRing,
        job: &EngineJob,
        req: InvokeRequest,
        log: &mut CallLog,
    ) -> Result<InvokeResponse, InvokeError> {
        if req.project.as_str() != job.project || req.function.as_str() != job.function {
            return Err(problem(
                ProblemKind::WrongFunction,
                format!(
                    "the request names {}, the platform routed it to /{}/{}",
                    req.path(),
                    job.project,
                    job.function
                ),
            ));
        }
        let digest = Manifest::digest(&job.manifest);
        let parsed = self.manifest(digest, &job.manifest).ok_or_else(|| {
            problem(
                ProblemKind::Internal,
                "the deployed manifest is unreadable".to_owned(),
            )
        })?;
        let manifest = &parsed.manifest;
        if manifest.name != req.function {
            return Err(problem(
                ProblemKind::WrongFunction,
                format!(
                    "the platform supplied the code of function {}",
                    manifest.name
                ),
            ));
        }
        if let Some(project) = &manifest.project
            && *project != req.project
        {
            return Err(problem(
                ProblemKind::WrongFunction,
                format!("the platform supplied the code of project {project}"),
            ));
        }
        // Refuse before decrypting anything: the deployed code is not the pinned code.
        if manifest.code_hash != req.code_hash {
            if manifest.log_key.is_some() && self.log_sink().is_some() {
                // Logged only if the deployed code opens (the manifest is then authentic).
                if self
                    .open_code(ring, &job.manifest, digest, &job.sealed_code, manifest)
                    .is_ok()
                {
                    log.note_request(&req, manifest);
                }
            }
            return Err(problem(
                ProblemKind::CodeHashMismatch,
                format!("the deployed code hash is {}", manifest.code_hash),
            ));
        }
        let code = self.open_code(ring, &job.manifest, digest, &job.sealed_code, manifest)?;
        log.note_request(&req, manifest);
        let env = if manifest.vars.is_empty() && manifest.secrets.is_empty() {
            clave_sandbox::Env::default()
        } else {
            self.env(ring, job, digest, &req, manifest)?
        };
        let limits = clamp_limits(&manifest.limits, &self.config.sandbox.max);
        let report = self
            .runner
            .run(
                RunRequest::new(req.code_hash, code, req, limits)
                    .with_env(env)
                    .with_outbound(parsed.outbound.clone()),
            )
            .await;
        log.console = report.console;
        log.console_truncated = report.console_truncated;
        log.stack = report.stack;
        report.result.map_err(run_problem)
    }

    /// The call's `env` (vars and the named secrets, opened), from memory when nothing it
    /// depends on changed.
    fn env(
        &self,
        ring: &KeyRing,
        job: &EngineJob,
        manifest_digest: [u8; 32],
        req: &InvokeRequest,
        manifest: &Manifest,
    ) -> Result<clave_sandbox::Env, InvokeError> {
        let key = env_key(&job.project, &manifest_digest, &job.secrets);
        if let Some(env) = lock(&self.env_cache).get(&key) {
            return Ok(env);
        }
        let env = build_env(&ring.code, &req.project, manifest, &job.secrets)?;
        lock(&self.env_cache).insert(key, env.clone());
        Ok(env)
    }

    /// Open sealed code (or take it from the in-memory cache); the result hashes to
    /// `manifest.code_hash`.
    fn open_code(
        &self,
        ring: &KeyRing,
        manifest_bytes: &[u8],
        manifest_digest: [u8; 32],
        sealed: &[u8],
        manifest: &Manifest,
    ) -> Result<Arc<str>, InvokeError> {
        let key = (manifest.code_hash, manifest_digest);
        if let Some(code) = lock(&self.code_cache).get(&key) {
            return Ok(code);
        }
        let unopenable = || {
            problem(
                ProblemKind::Internal,
                "the deployed code could not be opened".to_owned(),
            )
        };
        let sealed = SealedCode::from_bytes(sealed).map_err(|_| unopenable())?;
        let (code, hash) =
            open_code_with_keys(&ring.code, manifest_bytes, &sealed).map_err(|e| match e {
                clave_proto::Error::CodeHashMismatch { .. } => problem(
                    ProblemKind::CodeHashMismatch,
                    "the deployed code does not match its manifest".to_owned(),
                ),
                _ => unopenable(),
            })?;
        let code = Zeroizing::new(code);
        if hash != manifest.code_hash {
            return Err(problem(ProblemKind::CodeHashMismatch, None));
        }
        let text = std::str::from_utf8(&code)
            .map_err(|_| problem(ProblemKind::ScriptError, "the code is not UTF-8".to_owned()))?;
        let code: Arc<str> = Arc::from(text);
        lock(&self.code_cache).insert(key, code.clone());
        Ok(code)
    }
}

/// Refuse a request whose sealed mode differs from the route the host delivered it on: a
/// synchronous request relabelled asynchronous (to stretch its date window) or the reverse.
fn check_mode(req: &InvokeRequest, flags: JobFlags) -> Result<(), InvokeError> {
    let delivered = if flags.is_async() {
        InvokeMode::Async
    } else {
        InvokeMode::Sync
    };
    if req.mode == delivered {
        return Ok(());
    }
    let (sealed, route) = match req.mode {
        InvokeMode::Async => ("an asynchronous", "synchronous"),
        InvokeMode::Sync => ("a synchronous", "asynchronous"),
    };
    Err(problem(
        ProblemKind::BadRequest,
        format!("the request was sealed for {sealed} call and delivered as a {route} one"),
    ))
}

/// Seal the result (or problem) under the request's response key.
fn seal(
    responder: &InvokeResponder,
    result: &Result<InvokeResponse, InvokeError>,
) -> Result<Vec<u8>, Error> {
    let mut rng = rand::rng();
    match result {
        Ok(resp) => match responder.seal_response(resp, &mut rng) {
            Ok(v) => Ok(v),
            // E.g. a header the BHTTP encoder refuses: tell the user, encrypted.
            Err(_) => responder
                .seal_error(
                    &problem(
                        ProblemKind::ScriptError,
                        "the function's response cannot be encoded".to_owned(),
                    ),
                    &mut rng,
                )
                .map_err(Error::Seal),
        },
        Err(p) => responder.seal_error(p, &mut rng).map_err(Error::Seal),
    }
}

/// The plain BHTTP answer of the INSECURE benchmark path: the function's response, or the
/// problem JSON with its status.
fn plain_response(result: &Result<InvokeResponse, InvokeError>) -> Result<Vec<u8>, Error> {
    let as_problem = |p: &InvokeError| {
        InvokeResponse {
            status: p.status,
            headers: vec![(
                "content-type".to_owned(),
                clave_proto::invoke::MEDIA_TYPE_PROBLEM.to_owned(),
            )],
            body: p.to_problem_json(),
        }
        .to_bhttp()
        .map_err(Error::Seal)
    };
    match result {
        Ok(resp) => resp.to_bhttp().or_else(|_| {
            as_problem(&problem(
                ProblemKind::ScriptError,
                "the function's response cannot be encoded".to_owned(),
            ))
        }),
        Err(p) => as_problem(p),
    }
}
