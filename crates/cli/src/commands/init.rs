//! `clave init`: a starter project (clave.toml + src/index.js) from a template.

use std::path::Path;

use serde_json::json;

use crate::cli::{InitArgs, Template};
use crate::output::CliError;
use crate::project::{PROJECT_FILE, parse};

use super::Ctx;

const HELLO: &str = r#"// A clave function: a Workers-style ES module. `clave dev --watch` redeploys it on save.
export default {
  async fetch(request, env, ctx) {
    const input = request.method === "POST" ? await request.json().catch(() => ({})) : {};
    const name = input.name ?? new URL(request.url).searchParams.get("name") ?? "world";
    console.log(`greeting ${name}`);
    return Response.json({ greeting: `Hello, ${name}!` });
  },
};
"#;

const JSON_API: &str = r#"// A small JSON API: routes on request.method and the path after the function's URL.
// Try: clave invoke --method GET --path '/items?id=2'
//      clave invoke --method POST --path /items --data '{"name":"pear"}'
import { ITEMS, route } from "./routes.js";

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    return route(request.method, url, request);
  },
};

export { ITEMS };
"#;

const JSON_API_ROUTES: &str = r#"// Imported by index.js: `clave deploy` bundles relative imports (docs/bundles.md).
export const ITEMS = [
  { id: 1, name: "apple" },
  { id: 2, name: "banana" },
];

// The path after /{project}/{function} in the request URL.
function subpath(url) {
  const parts = url.pathname.split("/");
  return "/" + parts.slice(3).join("/");
}

export async function route(method, url, request) {
  const path = subpath(url);
  if (method === "GET" && path === "/items") {
    const id = url.searchParams.get("id");
    if (id === null) return Response.json(ITEMS);
    const item = ITEMS.find((i) => i.id === Number(id));
    return item ? Response.json(item) : Response.json({ error: "no such item" }, { status: 404 });
  }
  if (method === "POST" && path === "/items") {
    const body = await request.json();
    if (typeof body.name !== "string") {
      return Response.json({ error: "name must be a string" }, { status: 400 });
    }
    // Every call starts from the same snapshot: nothing persists between calls.
    return Response.json({ id: ITEMS.length + 1, name: body.name }, { status: 201 });
  }
  return Response.json({ error: `no route for ${method} ${path}` }, { status: 404 });
}
"#;

const STATS: &str = r#"// Statistics over posted numbers: clave invoke --data '[3, 1, 4, 1, 5]'
export default {
  async fetch(request, env, ctx) {
    const xs = await request.json();
    if (!Array.isArray(xs) || xs.length === 0 || !xs.every((x) => typeof x === "number")) {
      return Response.json({ error: "send a non-empty JSON array of numbers" }, { status: 400 });
    }
    const n = xs.length;
    const mean = xs.reduce((a, b) => a + b, 0) / n;
    const sorted = [...xs].sort((a, b) => a - b);
    const median = n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    const variance = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / n;
    return Response.json({ n, mean, median, min: sorted[0], max: sorted[n - 1], stddev: Math.sqrt(variance) });
  },
};
"#;

/// The files of a template, relative to the project directory.
fn files(t: Template) -> Vec<(&'static str, &'static str)> {
    match t {
        Template::Hello => vec![("src/index.js", HELLO)],
        Template::JsonApi => vec![
            ("src/index.js", JSON_API),
            ("src/routes.js", JSON_API_ROUTES),
        ],
        Template::Stats => vec![("src/index.js", STATS)],
    }
}

fn project_toml(name: &str) -> String {
    format!(
        r#"# The function `clave deploy`, `clave dev --watch`, `clave invoke` and `clave hash` use here.
name = "{name}"
entry = "src/index.js"
compatibility_date = "2026-12-01"

# Limits (optional; `--limit KEY=VALUE` overrides them).
[limits]
cpu_ms = 1000
heap_bytes = "64m"
"#
    )
}

fn default_name(dir: &Path) -> String {
    let base = dir
        .canonicalize()
        .ok()
        .and_then(|d| {
            d.file_name()
                .map(|n| n.to_string_lossy().to_ascii_lowercase())
        })
        .unwrap_or_default();
    let name: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name = name.trim_matches('-');
    if name.is_empty() {
        "hello".to_owned()
    } else {
        name.chars().take(63).collect()
    }
}

pub(super) fn init(ctx: &Ctx, args: &InitArgs) -> Result<(), CliError> {
    let dir = &args.dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::usage(format!("cannot create {}: {e}.", dir.display())))?;
    let name = args.name.clone().unwrap_or_else(|| default_name(dir));
    let toml = project_toml(&name);
    // The written file must parse (catches a bad --name before anything is written).
    parse(&toml).map_err(|e| CliError::usage(format!("--name {name:?}: {e}")))?;
    let mut all = vec![(PROJECT_FILE, toml.as_str())];
    all.extend(files(args.template));
    if let Some((rel, _)) = all.iter().find(|(rel, _)| dir.join(rel).exists()) {
        return Err(CliError::usage(format!(
            "{} already exists; clave init never overwrites files (choose another directory).",
            dir.join(rel).display()
        )));
    }
    for (rel, text) in &all {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                CliError::usage(format!("cannot create {}: {e}.", parent.display()))
            })?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| CliError::usage(format!("cannot write {}: {e}.", path.display())))?;
        std::io::Write::write_all(&mut f, text.as_bytes())
            .map_err(|e| CliError::usage(format!("cannot write {}: {e}.", path.display())))?;
    }
    let out = &ctx.out;
    if out.json {
        out.json_doc(&json!({
            "ok": true,
            "dir": dir,
            "name": name,
            "files": all.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
        }));
    } else {
        out.line(&format!(
            "{} {} in {}",
            out.green("created"),
            out.bold(&name),
            dir.display()
        ));
        for (rel, _) in &all {
            out.line(&format!("  {rel}"));
        }
        out.line("");
        out.line("Next:");
        if dir != Path::new(".") {
            out.line(&format!("  cd {}", dir.display()));
        }
        out.line(&format!("  {}", out.bold("clave dev --watch")));
        out.line(&format!(
            "  {}",
            out.bold("clave invoke --data '{\"name\":\"Ada\"}'")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_is_a_deployable_bundle_with_a_valid_project_file() {
        for t in [Template::Hello, Template::JsonApi, Template::Stats] {
            let dir = tempfile::tempdir().expect("tmp");
            for (rel, text) in files(t) {
                let p = dir.path().join(rel);
                std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
                std::fs::write(p, text).expect("write");
            }
            let toml = project_toml("starter");
            let f = parse(&toml).expect("project file parses");
            let c = crate::bundle::collect(dir.path(), f.entry.as_deref()).expect("collect");
            clave_sandbox::check(&c.code).unwrap_or_else(|e| panic!("{t:?}: {e}"));
        }
    }

    #[test]
    fn names_come_from_the_directory() {
        let dir = tempfile::tempdir().expect("tmp");
        let sub = dir.path().join("My_Fn");
        std::fs::create_dir(&sub).expect("mkdir");
        assert_eq!(default_name(&sub), "my-fn");
    }
}
