//! The project file `clave.toml`: one function's name, entry module, limits, vars, secret names,
//! outbound hosts and compatibility date, read by `deploy`, `dev --watch`, `invoke` and `config`.
//!
//! It is looked for in the current directory and then its parents (the first one found wins), or
//! taken from `--project-file` / `CLAVE_PROJECT_FILE`. Module paths are relative to its directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::output::CliError;

/// The project file's name.
pub const PROJECT_FILE: &str = "clave.toml";

/// `clave.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectFile {
    /// Function name (`[a-z0-9][a-z0-9-]*`).
    pub name: Option<String>,
    /// Entry module, relative to the file's directory (e.g. `src/index.js`).
    pub entry: Option<String>,
    /// The Workers compatibility date the code is written against (`YYYY-MM-DD`).
    pub compatibility_date: Option<String>,
    /// Limits (any subset; `--limit` flags override them key by key).
    #[serde(default)]
    pub limits: ProjectLimits,
    /// Plain variables the function reads from `env` (visible in the manifest).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Names of the sealed secrets the function may read from `env` (values never live here).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Hosts the function may reach with `fetch` (`api.example.com`, `*.example.com`).
    #[serde(default)]
    pub outbound: Vec<String>,
}

/// `[limits]`: sizes as integers (bytes) or strings with a k/m/g suffix (`"16m"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectLimits {
    /// CPU (wall-clock) time per call, milliseconds.
    pub cpu_ms: Option<Size>,
    /// JavaScript heap, bytes.
    pub heap_bytes: Option<Size>,
    /// JavaScript stack, bytes.
    pub stack_bytes: Option<Size>,
    /// Largest request body, bytes.
    pub max_request_bytes: Option<Size>,
    /// Largest response, bytes.
    pub max_response_bytes: Option<Size>,
    /// Console output kept per call, bytes.
    pub max_console_bytes: Option<Size>,
}

impl ProjectLimits {
    /// The limits set here as `KEY=VALUE` items, in the form `--limit` takes (flags come after
    /// them, so they win).
    #[must_use]
    pub fn as_items(&self) -> Vec<String> {
        [
            ("cpu_ms", &self.cpu_ms),
            ("heap_bytes", &self.heap_bytes),
            ("stack_bytes", &self.stack_bytes),
            ("max_request_bytes", &self.max_request_bytes),
            ("max_response_bytes", &self.max_response_bytes),
            ("max_console_bytes", &self.max_console_bytes),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", v.text())))
        .collect()
    }
}

/// A size: an integer or a string such as `"16m"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Size {
    /// A plain number.
    Number(u64),
    /// A number with an optional k/m/g (KiB/MiB/GiB) suffix.
    Text(String),
}

impl Size {
    fn text(&self) -> String {
        match self {
            Size::Number(n) => n.to_string(),
            Size::Text(t) => t.clone(),
        }
    }
}

/// A project file and where it was read from.
#[derive(Debug, Clone)]
pub struct Project {
    /// The parsed file.
    pub file: ProjectFile,
    /// Its path.
    pub path: PathBuf,
}

impl Project {
    /// The directory module paths are relative to.
    #[must_use]
    pub fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// Find the project file: `explicit` when given (it must exist), else `clave.toml` in `start`
    /// or the nearest parent that has one.
    ///
    /// # Errors
    /// An unreadable or invalid file (the message names the file, line and column).
    pub fn find(explicit: Option<&Path>, start: &Path) -> Result<Option<Self>, CliError> {
        if let Some(p) = explicit {
            return Self::load(p).map(Some);
        }
        let mut dir = Some(start);
        while let Some(d) = dir {
            let candidate = d.join(PROJECT_FILE);
            if candidate.is_file() {
                return Self::load(&candidate).map(Some);
            }
            dir = d.parent();
        }
        Ok(None)
    }

    /// Read and parse one project file.
    ///
    /// # Errors
    /// An unreadable or invalid file.
    pub fn load(path: &Path) -> Result<Self, CliError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}.", path.display())))?;
        let file = parse(&text).map_err(|e| CliError::usage(format!("{}:{e}", path.display())))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }
}

/// Parse `clave.toml` text; an error reads `LINE:COLUMN: what is wrong` (plus a hint).
///
/// # Errors
/// Syntax errors, unknown keys, wrong types, and values that break the rules of their field.
pub fn parse(text: &str) -> Result<ProjectFile, String> {
    let file: ProjectFile = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map_or((1, 1), |s| line_col(text, s.start));
        format!(
            "{line}:{col}: {}. Keys: name, entry, compatibility_date, secrets, outbound, [limits], [vars].",
            e.message().trim_end_matches('\n').trim_end_matches('.')
        )
    })?;
    let at = |key: &str| {
        text.lines()
            .position(|l| l.trim_start().starts_with(key))
            .map_or(1, |i| i + 1)
    };
    if let Some(n) = &file.name
        && n.parse::<clave_proto::FunctionName>().is_err()
    {
        return Err(format!(
            "{}:1: name {n:?} is not a valid function name: use 1-63 of a-z, 0-9 and '-', starting with a letter or digit.",
            at("name")
        ));
    }
    if let Some(d) = &file.compatibility_date
        && !is_date(d)
    {
        return Err(format!(
            "{}:1: compatibility_date {d:?} is not a date like \"2026-12-01\".",
            at("compatibility_date")
        ));
    }
    for s in &file.secrets {
        if !is_env_name(s) {
            return Err(format!(
                "{}:1: secret name {s:?} is not a name like API_KEY (letters, digits, '_', not starting with a digit).",
                at("secrets")
            ));
        }
    }
    for k in file.vars.keys() {
        if !is_env_name(k) {
            return Err(format!(
                "{}:1: var name {k:?} is not a name like GREETING (letters, digits, '_', not starting with a digit).",
                at("[vars]")
            ));
        }
        if file.secrets.contains(k) {
            return Err(format!(
                "{}:1: {k:?} is both a var and a secret; a name is one or the other.",
                at("[vars]")
            ));
        }
    }
    for h in &file.outbound {
        let host = h.strip_prefix("*.").unwrap_or(h);
        let ok = !host.is_empty()
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            return Err(format!(
                "{}:1: outbound host {h:?} is not a host name like \"api.example.com\" or \"*.example.com\".",
                at("outbound")
            ));
        }
    }
    Ok(file)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn is_env_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && s.len() <= 128
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && (1..=12).contains(&s[5..7].parse::<u8>().unwrap_or(0))
        && (1..=31).contains(&s[8..10].parse::<u8>().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
name = "hello"
entry = "src/index.js"
compatibility_date = "2026-12-01"
secrets = ["API_KEY"]
outbound = ["api.example.com", "*.example.org"]

[limits]
cpu_ms = 200
heap_bytes = "16m"

[vars]
GREETING = "Hello"
"#;

    #[test]
    fn parses_every_field() {
        let f = parse(FULL).expect("valid");
        assert_eq!(f.name.as_deref(), Some("hello"));
        assert_eq!(f.entry.as_deref(), Some("src/index.js"));
        assert_eq!(f.secrets, ["API_KEY"]);
        assert_eq!(f.vars.get("GREETING").map(String::as_str), Some("Hello"));
        assert_eq!(f.limits.as_items(), ["cpu_ms=200", "heap_bytes=16m"]);
        assert_eq!(parse("").expect("empty"), ProjectFile::default());
    }

    #[test]
    fn errors_name_the_line_and_refuse_unknown_keys() {
        let e = parse("name = \"a\"\nentyr = \"x.js\"\n").expect_err("unknown key");
        assert!(e.starts_with("2:1: "), "{e}");
        assert!(e.contains("entyr"), "{e}");
        let e = parse("name = \"a\"\n[limits]\ncpu = 1\n").expect_err("unknown limit");
        assert!(e.starts_with("3:"), "{e}");
        let e = parse("name = 3\n").expect_err("type");
        assert!(e.starts_with("1:"), "{e}");
        let e = parse("name = \"x\"\nsecrets = [\"API-KEY\"]\n").expect_err("secret name");
        assert!(e.starts_with("2:"), "{e}");
        for (text, want) in [
            (
                "name = \"Bad_Name\"\n",
                "1:1: name \"Bad_Name\" is not a valid function name",
            ),
            (
                "compatibility_date = \"2026-13-01\"\n",
                "1:1: compatibility_date \"2026-13-01\" is not a date",
            ),
            (
                "outbound = [\"https://x\"]\n",
                "1:1: outbound host \"https://x\" is not a host name",
            ),
            (
                "secrets = [\"A\"]\n[vars]\nA = \"1\"\n",
                "2:1: \"A\" is both a var and a secret",
            ),
            ("name = \"a\"\nname = \"b\"\n", "2:1: duplicate key"),
        ] {
            let e = parse(text).expect_err(text);
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn found_in_a_parent_directory() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join(PROJECT_FILE), "name = \"p\"\n").expect("write");
        let sub = dir.path().join("src").join("deep");
        std::fs::create_dir_all(&sub).expect("mkdir");
        let p = Project::find(None, &sub).expect("ok").expect("found");
        assert_eq!(p.file.name.as_deref(), Some("p"));
        assert_eq!(p.dir(), dir.path());
        std::fs::write(dir.path().join(PROJECT_FILE), "nme = \"p\"\n").expect("write");
        let e = Project::find(None, &sub).expect_err("invalid");
        assert!(e.message.contains("clave.toml:1:1"), "{}", e.message);
    }
}
