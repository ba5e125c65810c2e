//! Collecting a function's modules from disk: start at the entry file, follow its relative
//! imports (and vendored bare ones under `node_modules/`), refuse anything outside the root
//! directory, and build the [`Bundle`] whose canonical encoding is the deployed code.
//!
//! Import specifiers are found by a small JavaScript scanner ([`specifiers`]); the sandbox check
//! that `clave deploy` runs afterwards links the bundle exactly as the engine will, so an import
//! the scanner missed is reported there ("… is not in the bundle").

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use clave_sandbox::bundle::{self, Bundle, BundleError, VENDOR_DIR};

use crate::output::CliError;

/// Largest module file accepted, bytes.
const MAX_FILE_BYTES: u64 = 8 << 20;

/// Entry modules looked for in a directory, in order, when none is named.
pub(crate) const DEFAULT_ENTRIES: [&str; 5] = [
    "index.js",
    "index.mjs",
    "worker.js",
    "main.js",
    "src/index.js",
];

/// A collected function.
#[derive(Debug, Clone)]
pub(crate) struct Collected {
    /// The modules.
    pub bundle: Bundle,
    /// The code whose SHA-256 is the code hash ([`Bundle::encode`]).
    pub code: String,
    /// The directory module paths are relative to.
    pub root: PathBuf,
}

/// Collect the function at `path`: a directory (entry `entry` or one of [`DEFAULT_ENTRIES`]) or
/// an entry file (the root is its directory).
///
/// # Errors
/// Usage errors naming the file and the import specifier at fault.
pub(crate) fn collect(path: &Path, entry: Option<&str>) -> Result<Collected, CliError> {
    let (root, entry) = if path.is_dir() {
        let entry = match entry {
            Some(e) => e.trim_start_matches("./").replace('\\', "/"),
            None => DEFAULT_ENTRIES
                .iter()
                .find(|n| path.join(n).is_file())
                .map(|n| (*n).to_owned())
                .ok_or_else(|| {
                    CliError::usage(format!(
                        "{} holds none of {}; name the entry module with --entry (or `entry` in clave.toml).",
                        path.display(),
                        DEFAULT_ENTRIES.join(", ")
                    ))
                })?,
        };
        (path.to_path_buf(), entry)
    } else {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| CliError::usage(format!("{} is not a file.", path.display())))?;
        let root = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        (root, name)
    };
    bundle::check_path(&entry).map_err(|e| {
        CliError::usage(format!(
            "the entry module {entry:?} is not a path inside {}: {e}.",
            root.display()
        ))
    })?;
    let canonical_root = root
        .canonicalize()
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}.", root.display())))?;
    let mut modules = BTreeMap::new();
    let mut queue = VecDeque::from([(entry.clone(), None::<(String, String)>)]);
    while let Some((rel, importer)) = queue.pop_front() {
        if modules.contains_key(&rel) {
            continue;
        }
        let file = root.join(&rel);
        let from = |what: String| match &importer {
            Some((file, spec)) => format!("{file}: import {spec:?}: {what}"),
            None => what,
        };
        if !file.is_file() {
            let hint = if rel.starts_with(&format!("{VENDOR_DIR}/")) {
                "; clave fetches nothing: vendor an ES module build of the package there, or import it by a relative path"
            } else {
                " (imports name files exactly, with their extension, e.g. ./util.js)"
            };
            return Err(CliError::usage(from(format!(
                "{} does not exist{hint}.",
                file.display()
            ))));
        }
        let canonical = file
            .canonicalize()
            .map_err(|e| CliError::usage(from(format!("cannot read {}: {e}.", file.display()))))?;
        if !canonical.starts_with(&canonical_root) {
            return Err(CliError::usage(from(format!(
                "{} leads outside {} (a symbolic link?); every module must be inside the function's directory.",
                file.display(),
                root.display()
            ))));
        }
        let len = std::fs::metadata(&canonical).map_or(0, |m| m.len());
        if len > MAX_FILE_BYTES {
            return Err(CliError::usage(from(format!(
                "{} is larger than {MAX_FILE_BYTES} bytes.",
                file.display()
            ))));
        }
        let bytes = std::fs::read(&canonical)
            .map_err(|e| CliError::usage(from(format!("cannot read {}: {e}.", file.display()))))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            CliError::usage(from(format!(
                "{} is not UTF-8 text, so not a JavaScript module.",
                file.display()
            )))
        })?;
        for spec in specifiers(&text) {
            let target = bundle::resolve(&rel, &spec).map_err(|e| {
                CliError::usage(format!(
                    "{}: import {spec:?} is refused: {}.",
                    file.display(),
                    resolve_words(&e, &root)
                ))
            })?;
            if !modules.contains_key(&target) {
                queue.push_back((target, Some((file.display().to_string(), spec))));
            }
        }
        modules.insert(rel, text);
    }
    let bundle = Bundle::new(&entry, modules).map_err(|e| CliError::usage(format!("{e}.")))?;
    let code = bundle.encode();
    Ok(Collected { bundle, code, root })
}

fn resolve_words(e: &BundleError, root: &Path) -> String {
    match e {
        BundleError::EscapesRoot { .. } => format!(
            "it leaves the function's directory {} (deploy a directory that holds every module)",
            root.display()
        ),
        BundleError::Unsupported { .. } => {
            "only relative imports (./x.js, ../lib/y.js) and packages vendored under node_modules/ are bundled; nothing is fetched".to_owned()
        }
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Punct(char),
    /// A regular expression, template literal or number.
    Other,
}

/// Whether a `/` after `prev` starts a regular expression (rather than a division).
fn regex_allowed(prev: Option<&Tok>) -> bool {
    match prev {
        None => true,
        Some(Tok::Str(_) | Tok::Other) => false,
        Some(Tok::Punct(c)) => !matches!(c, ')' | ']' | '}'),
        Some(Tok::Ident(w)) => matches!(
            w.as_str(),
            "return"
                | "typeof"
                | "instanceof"
                | "in"
                | "of"
                | "new"
                | "delete"
                | "void"
                | "throw"
                | "case"
                | "do"
                | "else"
                | "yield"
                | "await"
        ),
    }
}

/// Tokens of JavaScript source, enough to find imports: comments, strings, template literals
/// (with `${}` nesting) and regular expressions are recognised so that their contents are not
/// mistaken for code.
fn tokens(src: &str) -> Vec<Tok> {
    let s: Vec<char> = src.chars().collect();
    let mut out: Vec<Tok> = Vec::new();
    // For each open `{`: whether it opened a template substitution `${`.
    let mut braces: Vec<bool> = Vec::new();
    let mut i = 0;
    // Skips a template literal's text from `i` (just after '`' or a substitution's '}'); returns
    // true when it stopped at a `${`.
    let template = |i: &mut usize| -> bool {
        while *i < s.len() {
            match s[*i] {
                '\\' => *i += 2,
                '`' => {
                    *i += 1;
                    return false;
                }
                '$' if s.get(*i + 1) == Some(&'{') => {
                    *i += 2;
                    return true;
                }
                _ => *i += 1,
            }
        }
        false
    };
    while i < s.len() {
        let c = s[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && s.get(i + 1) == Some(&'/') {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && s.get(i + 1) == Some(&'*') {
            i += 2;
            while i < s.len() && !(s[i] == '*' && s.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c == '\'' || c == '"' {
            let mut v = String::new();
            i += 1;
            while i < s.len() && s[i] != c && s[i] != '\n' {
                if s[i] == '\\' {
                    i += 1;
                }
                if let Some(&ch) = s.get(i) {
                    v.push(ch);
                }
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(v));
        } else if c == '`' {
            i += 1;
            if template(&mut i) {
                braces.push(true);
            }
            out.push(Tok::Other);
        } else if c == '/' && regex_allowed(out.last()) {
            i += 1;
            let mut class = false;
            while i < s.len() && s[i] != '\n' {
                match s[i] {
                    '\\' => i += 1,
                    '[' => class = true,
                    ']' => class = false,
                    '/' if !class => break,
                    _ => {}
                }
                i += 1;
            }
            i += 1;
            while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_' || s[i] == '$') {
                i += 1;
            }
            out.push(Tok::Other);
        } else if c.is_ascii_digit() {
            while i < s.len() && (s[i].is_alphanumeric() || s[i] == '.' || s[i] == '_') {
                i += 1;
            }
            out.push(Tok::Other);
        } else if c.is_alphabetic() || c == '_' || c == '$' || c == '#' || !c.is_ascii() {
            let start = i;
            i += 1;
            while i < s.len()
                && (s[i].is_alphanumeric() || s[i] == '_' || s[i] == '$' || !s[i].is_ascii())
                && !s[i].is_whitespace()
            {
                i += 1;
            }
            out.push(Tok::Ident(s[start..i].iter().collect()));
        } else {
            i += 1;
            match c {
                '{' => braces.push(false),
                '}' if braces.pop() == Some(true) => {
                    // The end of a template substitution: the template's text continues.
                    if template(&mut i) {
                        braces.push(true);
                    }
                    out.push(Tok::Other);
                    continue;
                }
                _ => {}
            }
            out.push(Tok::Punct(c));
        }
    }
    out
}

/// The module specifiers of `src`'s static imports (`import x from "s"`, `import "s"`), re-exports
/// (`export * from "s"`, `export { a } from "s"`) and dynamic imports of a string literal
/// (`import("s")`), in order of appearance, without repeats.
#[must_use]
pub(crate) fn specifiers(src: &str) -> Vec<String> {
    let t = tokens(src);
    let mut out: Vec<String> = Vec::new();
    let ident = |i: usize, w: &str| matches!(t.get(i), Some(Tok::Ident(x)) if x == w);
    let punct = |i: usize, c: char| matches!(t.get(i), Some(Tok::Punct(x)) if *x == c);
    // From `i`, the string after the `from` that ends an import/export clause.
    let from_clause = |mut i: usize| -> Option<String> {
        for _ in 0..10_000 {
            match t.get(i)? {
                Tok::Ident(w) if w == "from" => {
                    if let Some(Tok::Str(s)) = t.get(i + 1) {
                        return Some(s.clone());
                    }
                }
                Tok::Ident(_) | Tok::Str(_) => {}
                Tok::Punct('{' | '}' | ',' | '*') => {}
                _ => return None,
            }
            i += 1;
        }
        None
    };
    for i in 0..t.len() {
        if i > 0 && punct(i - 1, '.') {
            continue;
        }
        let found = if ident(i, "import") {
            match t.get(i + 1) {
                Some(Tok::Str(s)) => Some(s.clone()),
                Some(Tok::Punct('(')) => match (t.get(i + 2), t.get(i + 3)) {
                    (Some(Tok::Str(s)), Some(Tok::Punct(')' | ','))) => Some(s.clone()),
                    _ => None,
                },
                Some(Tok::Punct('.')) => None,
                _ => from_clause(i + 1),
            }
        } else if ident(i, "export") && (punct(i + 1, '*') || punct(i + 1, '{')) {
            from_clause(i + 1)
        } else {
            None
        };
        if let Some(s) = found
            && !out.contains(&s)
        {
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_finds_every_import_form_and_nothing_in_strings_comments_or_regexes() {
        let src = r#"
import a from "./a.js";
import { b, c as d } from './b.js'
import * as e from "./e.js";
import f, { g } from "./f.js";
import "./side.js";
export * from "./re.js";
export { h as default, "x y" as z } from "./h.js";
export const k = 1;
export { k as kk };
const m = import("./dyn.js");
const n = import(name);
// import q from "./comment.js";
/* import r from "./block.js"; */
const s = "import t from './string.js'";
const u = `import v from "./template.js" ${ "./not.js" } tail ${ x ? `a${y}` : 0 }`;
const re = /import w from "\.\/regex.js"/g;
const div = 4 / 2; const z2 = a.import("./member.js");
import.meta.url;
import from from "./from.js";
"#;
        assert_eq!(
            specifiers(src),
            [
                "./a.js",
                "./b.js",
                "./e.js",
                "./f.js",
                "./side.js",
                "./re.js",
                "./h.js",
                "./dyn.js",
                "./from.js"
            ]
        );
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    #[test]
    fn collects_the_graph_and_refuses_escapes_and_missing_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let fn_dir = dir.path().join("fn");
        write(
            &fn_dir,
            "src/index.js",
            "import { a } from './lib/a.js';\nimport p from 'pkg';\nexport default { fetch() { return new Response(a + p); } };\n",
        );
        write(&fn_dir, "src/lib/a.js", "export const a = 'A';\n");
        write(
            &fn_dir,
            "node_modules/pkg/index.js",
            "export default 'P';\n",
        );
        write(&fn_dir, "src/unused.js", "export const u = 1;\n");
        let c = collect(&fn_dir, None).expect("collect");
        assert_eq!(c.bundle.entry(), "src/index.js");
        assert_eq!(
            c.bundle.modules().keys().collect::<Vec<_>>(),
            ["node_modules/pkg/index.js", "src/index.js", "src/lib/a.js"]
        );
        assert_eq!(c.code, c.bundle.encode());
        // A file path: its directory is the root, so `../` leaves it.
        write(dir.path(), "outside.js", "export const o = 1;\n");
        write(
            &fn_dir,
            "escape.js",
            "import { o } from '../outside.js';\nexport default {};\n",
        );
        let e = collect(&fn_dir.join("escape.js"), None).expect_err("escape");
        assert!(e.message.contains("escape.js"), "{}", e.message);
        assert!(e.message.contains("\"../outside.js\""), "{}", e.message);
        assert!(e.message.contains("leaves"), "{}", e.message);
        write(
            &fn_dir,
            "missing.js",
            "import './nope.js';\nexport default {};\n",
        );
        let e = collect(&fn_dir.join("missing.js"), None).expect_err("missing");
        assert!(e.message.contains("nope.js"), "{}", e.message);
        write(
            &fn_dir,
            "bare.js",
            "import 'left-pad';\nexport default {};\n",
        );
        let e = collect(&fn_dir.join("bare.js"), None).expect_err("bare");
        assert!(e.message.contains("vendor"), "{}", e.message);
        write(&fn_dir, "url.js", "import 'https://x.example/m.js';\n");
        let e = collect(&fn_dir.join("url.js"), None).expect_err("url");
        assert!(e.message.contains("nothing is fetched"), "{}", e.message);
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_symbolic_link_out_of_the_root() {
        let dir = tempfile::tempdir().expect("tmp");
        write(dir.path(), "secret.js", "export const s = 1;\n");
        let fn_dir = dir.path().join("fn");
        write(&fn_dir, "index.js", "import { s } from './link.js';\n");
        std::os::unix::fs::symlink(dir.path().join("secret.js"), fn_dir.join("link.js"))
            .expect("symlink");
        let e = collect(&fn_dir, None).expect_err("symlink");
        assert!(e.message.contains("outside"), "{}", e.message);
    }
}
