//! `clave deploy`: read the code, verify the platform, seal and upload.

use std::collections::BTreeMap;
use std::path::Path;

use clave_client::{DeployEnv, Limits, now_unix};
use clave_proto::gateway_api::DeployResponse;

use crate::bundle::{self, Collected};
use crate::cli::DeployArgs;
use crate::config::{DeployRecord, Deploys, one_line};
use crate::output::{CliError, from_client};

use super::{Ctx, Target, render, secret};

fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim().to_ascii_lowercase();
    let (num, mul) = if let Some(n) = v.strip_suffix("k").or_else(|| v.strip_suffix("kib")) {
        (n, 1u64 << 10)
    } else if let Some(n) = v.strip_suffix("m").or_else(|| v.strip_suffix("mib")) {
        (n, 1 << 20)
    } else if let Some(n) = v.strip_suffix("g").or_else(|| v.strip_suffix("gib")) {
        (n, 1 << 30)
    } else {
        (v.as_str(), 1)
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mul)
}

fn parse_limits(items: &[String]) -> Result<Limits, CliError> {
    let mut l = Limits::default();
    for item in items.iter().filter(|s| !s.trim().is_empty()) {
        let (k, v) = item.split_once('=').ok_or_else(|| {
            CliError::usage(format!(
                "--limit {item:?} must look like KEY=VALUE, e.g. cpu_ms=500."
            ))
        })?;
        let value = parse_size(v)
            .ok_or_else(|| CliError::usage(format!("--limit {item:?}: {v:?} is not a number.")))?;
        match k.trim() {
            "cpu_ms" => l.cpu_ms = value,
            "heap_bytes" => l.heap_bytes = value,
            "stack_bytes" => l.stack_bytes = value,
            "max_request_bytes" => l.max_request_bytes = value,
            "max_response_bytes" => l.max_response_bytes = value,
            "max_console_bytes" => l.max_console_bytes = value,
            other => {
                return Err(CliError::usage(format!(
                    "unknown limit {other:?}; use cpu_ms, heap_bytes, stack_bytes, max_request_bytes, max_response_bytes or max_console_bytes."
                )));
            }
        }
    }
    Ok(l)
}

fn default_name(path: &Path) -> Option<String> {
    let p = if path.is_dir() {
        path.canonicalize().ok()?
    } else {
        path.to_path_buf()
    };
    let stem = p.file_stem()?.to_string_lossy().to_ascii_lowercase();
    let name: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name = name.trim_matches('-').to_owned();
    (!name.is_empty()).then_some(name)
}

/// What `clave deploy` and `clave dev --watch` deploy.
pub(super) struct Plan {
    /// Function name.
    pub name: String,
    /// Limits: clave.toml's, then the flags'.
    pub limits: Limits,
    /// The modules and the code.
    pub collected: Collected,
    /// Hosts the function's fetch() may reach: clave.toml's `outbound`, then the flags'.
    pub outbound: Vec<clave_proto::HostPattern>,
    /// Plain vars: clave.toml's `[vars]`, then the flags' (a flag wins).
    pub vars: BTreeMap<String, String>,
    /// Secret names the function may read: clave.toml's and the flags'.
    pub secrets: Vec<String>,
    /// Deploy without a developer log key (no sealed logs).
    pub no_logs: bool,
}

/// What the command line adds to the project file for a deploy.
#[derive(Default)]
pub(super) struct DeployFlags<'a> {
    /// `--limit KEY=VALUE` items.
    pub limits: &'a [String],
    /// `--outbound` hosts.
    pub outbound: &'a [String],
    /// `--var KEY=VALUE` items.
    pub vars: &'a [String],
    /// `--secret NAME` items.
    pub secrets: &'a [String],
    /// `--no-logs`.
    pub no_logs: bool,
}

/// Work out what to deploy: `path` (or the project file's directory), the name and the limits,
/// and collect and check the code. The project file applies when `path` is omitted or is its
/// directory.
pub(super) fn plan(
    ctx: &Ctx,
    path: Option<&Path>,
    name: Option<&str>,
    entry: Option<&str>,
    flags: &DeployFlags<'_>,
) -> Result<Plan, CliError> {
    let project = ctx.project.as_ref().filter(|p| {
        path.is_none_or(|path| path.canonicalize().ok() == p.dir().canonicalize().ok())
    });
    let path = match (path, project) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(p)) => p.dir(),
        (None, None) => {
            return Err(CliError::usage(
                "name the function's entry file or directory (clave deploy FILE_OR_DIR), or run this where a clave.toml describes it (`clave init` writes one).",
            ));
        }
    };
    let file = project.map(|p| &p.file);
    let name = match name
        .map(str::to_owned)
        .or_else(|| file.and_then(|f| f.name.clone()))
        .or_else(|| default_name(&path))
    {
        Some(n) => n,
        None => return Err(CliError::usage("name the function with --name.")),
    };
    if name.parse::<clave_proto::FunctionName>().is_err() {
        return Err(CliError::usage(format!(
            "{name:?} is not a valid function name: use 1-63 of a-z, 0-9 and '-', starting with a letter or digit."
        )));
    }
    let mut items = file.map(|f| f.limits.as_items()).unwrap_or_default();
    items.extend(flags.limits.iter().cloned());
    let limits = parse_limits(&items)?;
    let mut hosts = file.map(|f| f.outbound.clone()).unwrap_or_default();
    hosts.extend(flags.outbound.iter().cloned());
    let outbound = parse_outbound(&hosts)?;
    let mut vars = file.map(|f| f.vars.clone()).unwrap_or_default();
    for item in flags.vars {
        let Some((k, v)) = item.split_once('=') else {
            return Err(CliError::usage(format!("--var {item:?}: write KEY=VALUE.")));
        };
        if !clave_proto::secret::is_valid_secret_name(k) {
            return Err(CliError::usage(format!(
                "--var {k:?}: names are 1 to 64 characters of A-Z, a-z, 0-9 and _, not starting with a digit."
            )));
        }
        vars.insert(k.to_owned(), v.to_owned());
    }
    let mut secrets: Vec<String> = file.map(|f| f.secrets.clone()).unwrap_or_default();
    for s in flags.secrets {
        if !secrets.contains(s) {
            secrets.push(s.clone());
        }
    }
    let entry = entry
        .map(str::to_owned)
        .or_else(|| file.and_then(|f| f.entry.clone()));
    let collected = bundle::collect(&path, entry.as_deref())?;
    if let Err(e) = clave_sandbox::check(&collected.code) {
        return Err(CliError::usage(format!(
            "{} is not a deployable function: {}.",
            collected.root.join(collected.bundle.entry()).display(),
            one_line(&e.to_string()).trim_end_matches('.')
        )));
    }
    Ok(Plan {
        name,
        limits,
        collected,
        outbound,
        vars,
        secrets,
        no_logs: flags.no_logs,
    })
}

/// `--outbound` values (and clave.toml's `outbound`) as manifest host patterns (lower-cased;
/// duplicates dropped).
fn parse_outbound(args: &[String]) -> Result<Vec<clave_proto::HostPattern>, CliError> {
    let mut list: Vec<clave_proto::HostPattern> = Vec::new();
    for a in args {
        let p = clave_proto::HostPattern::parse(&a.trim().to_ascii_lowercase())
            .map_err(|e| CliError::usage(format!("--outbound {a:?}: {e}.")))?;
        if !list.contains(&p) {
            list.push(p);
        }
    }
    clave_proto::outbound::check_list(&list).map_err(|e| CliError::usage(format!("{e}.")))?;
    Ok(list)
}

/// Verify the platform, seal the planned code and upload it, and record its hash on this
/// machine; returns the gateway's answer and the code hash.
pub(super) async fn upload(
    ctx: &Ctx,
    t: &Target,
    plan: &Plan,
) -> Result<(DeployResponse, String, bool), CliError> {
    let token = ctx.need_token(t, "deploy")?;
    let client = ctx.client(t)?;
    let verified = ctx.verify(&client, t).await?;
    let env = secret::deploy_env(
        ctx,
        t,
        &client,
        token,
        &plan.vars,
        &plan.secrets,
        plan.no_logs,
    )
    .await?;
    let env = DeployEnv {
        outbound: plan.outbound.clone(),
        ..env
    };
    let pb = ctx
        .out
        .spinner("sealing the code to the attested code key and uploading…");
    let r = client
        .deploy_with_env(
            &t.project,
            &plan.name,
            plan.collected.bundle.entry(),
            plan.collected.code.as_bytes(),
            plan.limits,
            &env,
            token,
        )
        .await;
    pb.finish_and_clear();
    let d = r.map_err(|e| from_client(&e, &ctx.err_ctx(t, Some(&plan.name))))?;
    let hash = d.code_hash.to_hex();
    if let Err(e) = Deploys::record(
        &ctx.dir,
        &t.gateway,
        &t.project,
        &plan.name,
        DeployRecord {
            code_hash: hash.clone(),
            version: d.response.version,
            deployed_at: now_unix(),
        },
    ) {
        ctx.out.warn(&format!(
            "could not record the code hash in {}: {e}",
            ctx.dir.display()
        ));
    }
    Ok((d.response, hash, verified.insecure()))
}

pub(super) async fn deploy(ctx: &Ctx, args: DeployArgs) -> Result<(), CliError> {
    let plan = plan(
        ctx,
        args.path.as_deref(),
        args.name.as_deref(),
        args.entry.as_deref(),
        &DeployFlags {
            limits: &args.limits,
            outbound: &args.outbound,
            vars: &args.vars,
            secrets: &args.secrets,
            no_logs: args.no_logs,
        },
    )?;
    let t = ctx.target()?;
    let (response, hash, insecure) = upload(ctx, &t, &plan).await?;
    render::deployed(
        &ctx.out,
        &response,
        &hash,
        &plan.collected,
        &plan.outbound,
        insecure,
        &plan.name,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::exit;

    #[test]
    fn limits_parse_with_suffixes_and_refuse_unknown_keys() {
        let l = parse_limits(&["cpu_ms=250".into(), "heap_bytes=16m".into(), " ".into()])
            .expect("valid");
        assert_eq!(l.cpu_ms, 250);
        assert_eq!(l.heap_bytes, 16 << 20);
        assert_eq!(l.stack_bytes, Limits::default().stack_bytes);
        assert_eq!(parse_size("2k"), Some(2048));
        assert_eq!(parse_size("x"), None);
        assert_eq!(
            parse_limits(&["cpu=1".into()]).map_err(|e| e.code),
            Err(exit::USAGE)
        );
        assert_eq!(
            parse_limits(&["cpu_ms".into()]).map_err(|e| e.code),
            Err(exit::USAGE)
        );
        assert_eq!(
            parse_limits(&["cpu_ms=-1".into()]).map_err(|e| e.code),
            Err(exit::USAGE)
        );
    }

    #[test]
    fn default_names_come_from_the_file() {
        assert_eq!(
            default_name(Path::new("examples/Salary_Stats.js")).as_deref(),
            Some("salary-stats")
        );
        assert_eq!(
            default_name(Path::new("x/hello.mjs")).as_deref(),
            Some("hello")
        );
    }
}
