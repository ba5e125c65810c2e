//! `clave deploy`: read the code, verify the platform, seal and upload.

use std::path::Path;

use clave_client::{Limits, now_unix};

use crate::cli::DeployArgs;
use crate::config::{DeployRecord, Deploys, one_line};
use crate::output::{CliError, from_client};

use super::{Ctx, render};

/// Find the entry module of a file or directory.
fn load_code(path: &Path, entry: Option<&str>) -> Result<(String, Vec<u8>), CliError> {
    let file = if path.is_dir() {
        match entry {
            Some(e) => path.join(e),
            None => ["index.js", "index.mjs", "worker.js", "main.js"]
                .iter()
                .map(|n| path.join(n))
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    CliError::usage(format!(
                        "{} holds no index.js, index.mjs, worker.js or main.js; name the entry module with --entry.",
                        path.display()
                    ))
                })?,
        }
    } else {
        path.to_path_buf()
    };
    let code = std::fs::read(&file)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", file.display())))?;
    let text = std::str::from_utf8(&code).map_err(|_| {
        CliError::usage(format!(
            "{} is not UTF-8 text, so not a JavaScript module.",
            file.display()
        ))
    })?;
    if let Err(e) = clave_sandbox::check(text) {
        return Err(CliError::usage(format!(
            "{} is not a deployable function: {}.",
            file.display(),
            one_line(&e.to_string()).trim_end_matches('.')
        )));
    }
    let entry_name = file.file_name().map_or_else(
        || "index.js".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok((entry_name, code))
}

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

pub(super) async fn deploy(ctx: &Ctx, args: DeployArgs) -> Result<(), CliError> {
    let name = match args.name.clone().or_else(|| default_name(&args.path)) {
        Some(n) => n,
        None => return Err(CliError::usage("name the function with --name.")),
    };
    if name.parse::<clave_proto::FunctionName>().is_err() {
        return Err(CliError::usage(format!(
            "{name:?} is not a valid function name: use 1-63 of a-z, 0-9 and '-', starting with a letter or digit."
        )));
    }
    let limits = parse_limits(&args.limits)?;
    let (entry, code) = load_code(&args.path, args.entry.as_deref())?;
    let t = ctx.target()?;
    let token = ctx.need_token(&t, "deploy")?;
    let client = ctx.client(&t)?;
    let verified = ctx.verify(&client, &t).await?;
    let pb = ctx
        .out
        .spinner("sealing the code to the attested code key and uploading…");
    let r = client
        .deploy(&t.project, &name, &entry, &code, limits, token)
        .await;
    pb.finish_and_clear();
    let d = r.map_err(|e| from_client(&e, &ctx.err_ctx(&t, Some(&name))))?;
    let hash = d.code_hash.to_hex();
    if let Err(e) = Deploys::record(
        &ctx.dir,
        &t.gateway,
        &t.project,
        &name,
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
    let out = &ctx.out;
    render::deployed(
        out,
        &d.response,
        &hash,
        &entry,
        code.len(),
        verified.insecure(),
        &name,
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
