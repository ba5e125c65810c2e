//! `clave invoke`: seal a call pinned to a code hash and print the answer.

use std::io::Read as _;
use std::path::Path;

use clave_client::{CodeHash, Target};
use clave_proto::invoke::{check_method, check_target};

use crate::cli::InvokeArgs;
use crate::config::Deploys;
use crate::output::{CliError, from_client};

use super::{Ctx, render};

fn read_data(arg: Option<&str>) -> Result<Vec<u8>, CliError> {
    match arg {
        None => Ok(Vec::new()),
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).map_err(|e| {
                CliError::usage(format!("cannot read the request body from stdin: {e}"))
            })?;
            Ok(buf)
        }
        Some(a) if a.starts_with('@') => {
            let path = Path::new(&a[1..]);
            let bytes = std::fs::read(path).map_err(|e| {
                CliError::usage(format!("cannot read input file {}: {e}.", path.display()))
            })?;
            let is_json = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"));
            if is_json && let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                return Err(CliError::usage(format!(
                    "input file {} is not valid JSON: {e}.",
                    path.display()
                )));
            }
            Ok(bytes)
        }
        Some(literal) => Ok(literal.as_bytes().to_vec()),
    }
}

pub(super) async fn invoke(ctx: &Ctx, args: InvokeArgs) -> Result<(), CliError> {
    let name = match args.name.clone().or_else(|| ctx.project_name()) {
        Some(n) => n,
        None => {
            return Err(CliError::usage(
                "name the function: clave invoke NAME (or run it where a clave.toml names one).",
            ));
        }
    };
    let target = Target::new(
        args.method.to_ascii_uppercase(),
        args.path.clone().unwrap_or_default(),
    );
    if let Err(e) = check_method(target.method.as_bytes()).and_then(|()| check_target(&target.path))
    {
        return Err(CliError::usage(format!(
            "--method {:?} --path {:?}: {e}.",
            args.method, target.path
        )));
    }
    let body = read_data(args.data.as_deref())?;
    let mut headers = Vec::new();
    for h in &args.headers {
        let (n, v) = h
            .split_once(':')
            .ok_or_else(|| CliError::usage(format!("--header {h:?} must look like NAME:VALUE.")))?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    if !headers.iter().any(|(n, _)| n == "content-type") {
        let ct = match &args.content_type {
            Some(ct) => Some(ct.clone()),
            None if body.is_empty() => None,
            None if serde_json::from_slice::<serde_json::Value>(&body).is_ok() => {
                Some("application/json".to_owned())
            }
            None => Some("text/plain; charset=utf-8".to_owned()),
        };
        if let Some(ct) = ct {
            headers.push(("content-type".to_owned(), ct));
        }
    }
    let explicit = match &args.hash {
        Some(h) => Some(
            h.trim()
                .to_ascii_lowercase()
                .parse::<CodeHash>()
                .map_err(|_| {
                    CliError::usage(format!("--hash {h:?} is not a code hash (64 hex digits)."))
                })?,
        ),
        None => None,
    };
    let t = ctx.target()?;
    let ectx = ctx.err_ctx(&t, Some(&name));
    let client = ctx.client(&t)?;
    let (hash, source) = if let Some(h) = explicit {
        (h, "--hash")
    } else if args.trust_latest {
        let token = ctx.need_token(&t, "--trust-latest")?;
        let (version, h) = client
            .active_code_hash(&t.project, &name, token)
            .await
            .map_err(|e| from_client(&e, &ectx))?;
        ctx.out.warn(&format!(
            "--trust-latest: pinning version {version} (code hash {h}) because the gateway says it is active; the gateway is not trusted, so you get whatever code its operator activated."
        ));
        (h, "--trust-latest")
    } else {
        let deploys = Deploys::load(&ctx.dir);
        match deploys.get(&t.gateway, &t.project, &name) {
            Some(rec) => (
                rec.code_hash.parse::<CodeHash>().map_err(|_| {
                    CliError::usage(format!(
                        "the recorded code hash of {:?} in {} is malformed; pass --hash.",
                        name,
                        ctx.dir.join(crate::config::DEPLOYS_FILE).display()
                    ))
                })?,
                "the last `clave deploy` on this machine",
            ),
            None => {
                return Err(CliError::usage(format!(
                    "no code hash to pin for {:?}: pass --hash with the hash its developer published, or --trust-latest to pin whatever the gateway says is active.",
                    name
                )));
            }
        }
    };
    let verified = ctx.verify(&client, &t).await?;
    let r = if args.asynchronous {
        let pb = ctx
            .out
            .spinner("sealing the request and queueing it (asynchronous call)…");
        let pending = client
            .invoke_async_target(&t.project, &name, &target, &body, &headers, &hash)
            .await;
        pb.finish_and_clear();
        let pending = pending.map_err(|e| from_client(&e, &ectx))?;
        ctx.out.note(&format!(
            "queued as {}; waiting for the sealed result (up to {} s)…",
            pending.id(),
            args.wait_secs
        ));
        let pb = ctx.out.spinner("waiting for an engine to run the call…");
        let r = client
            .wait_result(
                &pending,
                std::time::Duration::from_secs(args.wait_secs),
                std::time::Duration::from_millis(200),
            )
            .await;
        pb.finish_and_clear();
        r
    } else {
        let pb = ctx
            .out
            .spinner("sealing the request and waiting for the engine…");
        let r = client
            .invoke_target(&t.project, &name, &target, &body, &headers, &hash)
            .await;
        pb.finish_and_clear();
        r
    };
    let resp = r.map_err(|e| from_client(&e, &ectx))?;
    let out = &ctx.out;
    render::invoke_response(out, &resp, &hash, source, verified.insecure());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::exit;

    #[test]
    fn data_argument_forms() {
        assert_eq!(read_data(None).expect("none"), b"");
        assert_eq!(read_data(Some("{\"a\":1}")).expect("literal"), b"{\"a\":1}");
        let dir = tempfile::tempdir().expect("tmp");
        let good = dir.path().join("in.json");
        std::fs::write(&good, "[1,2]").expect("write");
        assert_eq!(
            read_data(Some(&format!("@{}", good.display()))).expect("file"),
            b"[1,2]"
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "[1,").expect("write");
        let e = read_data(Some(&format!("@{}", bad.display()))).expect_err("bad json");
        assert_eq!(e.code, exit::USAGE);
        assert!(e.message.contains("not valid JSON"), "{}", e.message);
        let txt = dir.path().join("in.txt");
        std::fs::write(&txt, "[1,").expect("write");
        assert_eq!(
            read_data(Some(&format!("@{}", txt.display()))).expect("text"),
            b"[1,"
        );
        let e = read_data(Some("@/nonexistent/x")).expect_err("missing file");
        assert_eq!(e.code, exit::USAGE);
        assert!(
            e.message
                .starts_with("cannot read input file /nonexistent/x: "),
            "{}",
            e.message
        );
    }
}
