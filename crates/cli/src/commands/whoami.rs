//! `clave config` (alias `whoami`): every effective setting and the layer it came from.

use serde_json::json;

use super::{Ctx, Source};

/// One row: setting, value as shown, source.
type Row = (&'static str, String, String);

fn source_words(ctx: &Ctx, s: Source) -> String {
    match s {
        Source::Flag => "flag".to_owned(),
        Source::Env(var) => format!("env {var}"),
        Source::ConfigFile => ctx
            .dir
            .join(crate::config::CONFIG_FILE)
            .display()
            .to_string(),
        Source::DevRecord => ctx.dir.join(crate::config::DEV_FILE).display().to_string(),
        Source::ProjectFile => ctx
            .project
            .as_ref()
            .map_or_else(String::new, |p| p.path.display().to_string()),
        Source::Found => "found from the current directory".to_owned(),
        Source::Default => "default".to_owned(),
    }
}

/// A token shown by its first characters only.
fn masked(token: &str) -> String {
    let head: String = token.chars().take(6).collect();
    format!("{head}… ({} characters)", token.chars().count())
}

fn rows(ctx: &Ctx) -> Vec<Row> {
    let s = ctx.settings();
    let mut rows: Vec<Row> = Vec::new();
    let mut add = |key, v: Option<(String, Source)>| match v {
        Some((v, src)) => rows.push((key, v, source_words(ctx, src))),
        None => rows.push((key, "(not set)".to_owned(), String::new())),
    };
    add("gateway", s.gateway.clone());
    add("token", s.token.map(|(t, src)| (masked(&t), src)));
    add(
        "admin_token",
        s.admin_token.map(|(t, src)| (masked(&t), src)),
    );
    add("project", Some(s.project.clone()));
    add(
        "insecure_dev",
        Some((s.insecure_dev.0.to_string(), s.insecure_dev.1)),
    );
    add(
        "accept_external_master_secret",
        Some((
            s.accept_external_master_secret.0.to_string(),
            s.accept_external_master_secret.1,
        )),
    );
    let path =
        |v: Option<(std::path::PathBuf, Source)>| v.map(|(p, s)| (p.display().to_string(), s));
    add("kds_policy", path(s.kds_policy));
    add("engine_policy", path(s.engine_policy));
    add("kds_admission_policy", path(s.kds_admission_policy));
    add(
        "max_age_secs",
        s.max_age_secs.map(|(v, src)| (v.to_string(), src)),
    );
    let dir_source = if std::env::var_os("CLAVE_CONFIG_DIR").is_some_and(|d| !d.is_empty()) {
        Source::Env("CLAVE_CONFIG_DIR")
    } else if std::env::var_os("XDG_CONFIG_HOME").is_some_and(|d| !d.is_empty()) {
        Source::Env("XDG_CONFIG_HOME")
    } else {
        Source::Default
    };
    add(
        "config_dir",
        Some((ctx.dir.display().to_string(), dir_source)),
    );
    let project_file = ctx.project.as_ref().map(|p| {
        let src = match ctx.global.origins.get("project_file") {
            Some(crate::cli::Origin::Flag) => Source::Flag,
            Some(crate::cli::Origin::Env) => Source::Env("CLAVE_PROJECT_FILE"),
            None => Source::Found,
        };
        (p.path.display().to_string(), src)
    });
    add("project_file", project_file);
    if let Some(p) = &ctx.project {
        let f = &p.file;
        let from_file = |v: Option<String>| v.map(|v| (v, Source::ProjectFile));
        add("function", from_file(f.name.clone()));
        add("entry", from_file(f.entry.clone()));
        add(
            "compatibility_date",
            from_file(f.compatibility_date.clone()),
        );
        let limits = f.limits.as_items();
        add(
            "limits",
            from_file((!limits.is_empty()).then(|| limits.join(", "))),
        );
        add(
            "vars",
            from_file((!f.vars.is_empty()).then(|| {
                f.vars
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })),
        );
        add(
            "secrets",
            from_file((!f.secrets.is_empty()).then(|| f.secrets.join(", "))),
        );
        add(
            "outbound",
            from_file((!f.outbound.is_empty()).then(|| f.outbound.join(", "))),
        );
    }
    rows
}

pub(super) fn config(ctx: &Ctx) -> Result<(), crate::output::CliError> {
    let rows = rows(ctx);
    let out = &ctx.out;
    if out.json {
        let settings: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(k, v, src)| ((*k).to_owned(), json!({"value": v, "source": src})))
            .collect();
        out.json_doc(&json!({"ok": true, "settings": settings}));
    } else {
        let width = rows.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
        for (k, v, src) in &rows {
            if src.is_empty() {
                out.line(&format!("{k:<width$}  {}", out.dim(v)));
            } else {
                out.line(&format!(
                    "{k:<width$}  {v}  {}",
                    out.dim(&format!("({src})"))
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::masked;

    #[test]
    fn tokens_are_masked() {
        let m = masked("cdt_0123456789abcdef");
        assert!(m.starts_with("cdt_01…"), "{m}");
        assert!(!m.contains("89abcdef"), "{m}");
    }
}
