//! `clave secret put|list|delete`, and what `clave deploy` adds to the manifest for the
//! developer loop (vars, secret names, the developer log key).

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Read as _};

use clave_client::{Client, DeployEnv};
use serde_json::json;
use zeroize::Zeroizing;

use super::{Ctx, Target};
use crate::cli::SecretCommand;
use crate::output::{CliError, from_client};

/// Largest secret value, bytes.
const MAX_VALUE: usize = clave_proto::secret::MAX_SECRET_VALUE;

pub(super) async fn run(ctx: &Ctx, cmd: SecretCommand) -> Result<(), CliError> {
    match cmd {
        SecretCommand::Put { name, function } => put(ctx, &name, function.as_deref()).await,
        SecretCommand::List => list(ctx).await,
        SecretCommand::Delete { name, function } => delete(ctx, &name, function.as_deref()).await,
    }
}

fn check_name(name: &str) -> Result<(), CliError> {
    if clave_proto::secret::is_valid_secret_name(name) {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "{name:?} is not a valid secret name: use 1 to 64 characters of A-Z, a-z, 0-9 and _, not starting with a digit (the function reads it as env.{name})."
        )))
    }
}

fn check_function(function: Option<&str>) -> Result<(), CliError> {
    match function {
        Some(f) if f.parse::<clave_proto::FunctionName>().is_err() => Err(CliError::usage(
            format!("{f:?} is not a valid function name."),
        )),
        _ => Ok(()),
    }
}

/// The value: a prompt without echo on a terminal, else all of stdin (one trailing newline
/// dropped).
fn read_value(name: &str) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let mut value = if std::io::stdin().is_terminal() {
        let v = rpassword::prompt_password(format!("value of {name} (not echoed): "))
            .map_err(|e| CliError::usage(format!("cannot read the value: {e}")))?;
        Zeroizing::new(v.into_bytes())
    } else {
        let mut v = Zeroizing::new(Vec::new());
        std::io::stdin()
            .take(MAX_VALUE as u64 + 2)
            .read_to_end(&mut v)
            .map_err(|e| CliError::usage(format!("cannot read the value from stdin: {e}")))?;
        if v.ends_with(b"\n") {
            v.pop();
            if v.ends_with(b"\r") {
                v.pop();
            }
        }
        v
    };
    if value.len() > MAX_VALUE {
        value.clear();
        return Err(CliError::usage(format!(
            "the value is larger than {MAX_VALUE} bytes."
        )));
    }
    if std::str::from_utf8(&value).is_err() {
        return Err(CliError::usage(
            "the value must be UTF-8 text (functions read secrets as strings); base64-encode binary values.",
        ));
    }
    Ok(value)
}

async fn put(ctx: &Ctx, name: &str, function: Option<&str>) -> Result<(), CliError> {
    check_name(name)?;
    check_function(function)?;
    let t = ctx.target()?;
    let token = ctx.need_token(&t, "secret put")?;
    let value = read_value(name)?;
    let client = ctx.client(&t)?;
    let verified = ctx.verify(&client, &t).await?;
    let pb = ctx
        .out
        .spinner("sealing the value to the attested code key and uploading…");
    let r = client
        .put_secret(&t.project, function, name, &value, token)
        .await;
    pb.finish_and_clear();
    let e = r.map_err(|e| from_client(&e, &ctx.err_ctx(&t, function)))?;
    let scope = function.map_or_else(
        || format!("project {}", t.project),
        |f| format!("{}/{f}", t.project),
    );
    if ctx.out.json {
        ctx.out.json_doc(&json!({
            "ok": true,
            "project": t.project,
            "function": function,
            "name": name,
            "version": e.version,
            "insecure": verified.insecure(),
        }));
    } else {
        ctx.out.line(&format!(
            "{} {} version {} for {scope} (sealed to the attested code key; the gateway stores ciphertext only)",
            ctx.out.green("stored"),
            ctx.out.bold(name),
            e.version
        ));
        ctx.out.line(&ctx.out.dim(&format!(
            "a function reads it as env.{name} once deployed with --secret {name}"
        )));
    }
    Ok(())
}

async fn list(ctx: &Ctx) -> Result<(), CliError> {
    let t = ctx.target()?;
    let token = ctx.need_token(&t, "secret list")?;
    let client = ctx.client(&t)?;
    let list = client
        .list_secrets(&t.project, token)
        .await
        .map_err(|e| from_client(&e, &ctx.err_ctx(&t, None)))?;
    if ctx.out.json {
        ctx.out.json_doc(&json!({
            "project": list.project,
            "secrets": list.secrets.iter().map(|s| json!({
                "name": s.name,
                "function": s.function,
                "version": s.version,
                "updated": s.updated,
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    if list.secrets.is_empty() {
        ctx.out.line(&format!(
            "no secrets in project {} (add one: clave secret put NAME)",
            t.project
        ));
        return Ok(());
    }
    ctx.out.line(&ctx.out.bold(&format!(
        "{:<24} {:<20} {:>7}  {}",
        "NAME", "FUNCTION", "VERSION", "UPDATED"
    )));
    for s in &list.secrets {
        ctx.out.line(&format!(
            "{:<24} {:<20} {:>7}  {}",
            s.name,
            s.function.as_deref().unwrap_or("(project-wide)"),
            s.version,
            super::tail::utc(s.updated.max(0).unsigned_abs().saturating_mul(1000))
        ));
    }
    Ok(())
}

async fn delete(ctx: &Ctx, name: &str, function: Option<&str>) -> Result<(), CliError> {
    check_name(name)?;
    check_function(function)?;
    let t = ctx.target()?;
    let token = ctx.need_token(&t, "secret delete")?;
    let client = ctx.client(&t)?;
    client
        .delete_secret(&t.project, function, name, token)
        .await
        .map_err(|e| match e {
            clave_client::ClientError::Gateway { status: 404, .. } => CliError::failed(format!(
                "there is no secret {name:?} {} (see clave secret list).",
                function.map_or_else(
                    || "shared by the project; pass --function for a function's own".to_owned(),
                    |f| format!("for function {f}")
                )
            )),
            other => from_client(&other, &ctx.err_ctx(&t, function)),
        })?;
    if ctx.out.json {
        ctx.out
            .json_doc(&json!({ "ok": true, "name": name, "function": function }));
    } else {
        ctx.out.line(&format!(
            "{} {}",
            ctx.out.green("deleted"),
            ctx.out.bold(name)
        ));
    }
    Ok(())
}

/// The manifest additions of a deploy: `--var`, `--secret`, and (unless `--no-logs`) this
/// machine's developer log key, created on first need and registered with the project.
pub(super) async fn deploy_env(
    ctx: &Ctx,
    t: &Target,
    client: &Client,
    token: &str,
    vars: &BTreeMap<String, String>,
    secrets: &[String],
    no_logs: bool,
) -> Result<DeployEnv, CliError> {
    let mut env = DeployEnv {
        vars: vars.clone(),
        ..DeployEnv::default()
    };
    for name in secrets {
        check_name(name)?;
        if env.vars.contains_key(name) || env.secrets.contains(name) {
            return Err(CliError::usage(format!(
                "{name} is named twice (--var and --secret share env)."
            )));
        }
        env.secrets.push(name.clone());
    }
    if no_logs {
        return Ok(env);
    }
    let (pair, created) = crate::logkey::load_or_create(&ctx.dir).map_err(CliError::usage)?;
    if created {
        ctx.out.note(&format!(
            "created the developer log key {} (only this file opens your functions' logs)",
            crate::logkey::path(&ctx.dir).display()
        ));
    }
    let key = pair.public();
    let registered = client
        .log_key(&t.project, token)
        .await
        .map_err(|e| from_client(&e, &ctx.err_ctx(t, None)))?;
    if registered != Some(key) {
        if registered.is_some() {
            ctx.out.warn(&format!(
                "project {} had another developer log key; from this version on, logs are sealed to this machine's key",
                t.project
            ));
        }
        client
            .register_log_key(&t.project, &key, token)
            .await
            .map_err(|e| from_client(&e, &ctx.err_ctx(t, None)))?;
    }
    env.log_key = Some(key);
    Ok(env)
}
