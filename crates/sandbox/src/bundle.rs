//! Code bundles: a function made of several ES modules, the canonical encoding whose SHA-256 is
//! its code hash, and the one import-resolution rule the CLI (collecting the files) and the
//! sandbox (linking them) share.
//!
//! Encoding (see `docs/bundles.md`), all of it UTF-8 text:
//!
//! ```text
//! code   = MAGIC field(entry) 2*( field(path) field(source) )    ; modules sorted by path bytes
//! MAGIC  = %x00 "clave-bundle/1" %x0A
//! field  = decimal-length ":" bytes %x0A                         ; length of bytes, no leading 0
//! ```
//!
//! A function of one module is not encoded: its code is the module's source as is, so a
//! single-file deploy hashes to the SHA-256 of its file. A module cannot start with NUL (it is
//! not valid JavaScript there), so a code text starting with `MAGIC` is always a bundle.

use std::collections::BTreeMap;

/// The first bytes of an encoded bundle.
pub const MAGIC: &str = "\0clave-bundle/1\n";
/// Most modules in a bundle.
pub const MAX_MODULES: usize = 1024;
/// Longest module path, bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// Directory that vendored packages live in (`import "pkg"` is `node_modules/pkg/index.js`).
pub const VENDOR_DIR: &str = "node_modules";

/// Why a bundle, a module path or an import specifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The encoding does not follow the grammar (or is not canonical).
    #[error("malformed bundle: {0}")]
    Malformed(&'static str),
    /// A module path is not a normalised relative path.
    #[error("invalid module path {path:?}: {reason}")]
    InvalidPath {
        /// The path.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The entry module is not among the modules.
    #[error("the entry module {0:?} is not in the bundle")]
    MissingEntry(String),
    /// More than [`MAX_MODULES`] modules.
    #[error("a bundle holds at most {MAX_MODULES} modules")]
    TooManyModules,
    /// A relative specifier climbs above the bundle's root directory.
    #[error("import {specifier:?} in {importer:?} leaves the bundle's root directory")]
    EscapesRoot {
        /// The importing module.
        importer: String,
        /// The specifier.
        specifier: String,
    },
    /// A URL or scheme specifier (`node:fs`, `https://…`): nothing is fetched.
    #[error(
        "import {specifier:?} in {importer:?} names a URL or built-in; only relative imports (./x.js) and vendored packages are bundled"
    )]
    Unsupported {
        /// The importing module.
        importer: String,
        /// The specifier.
        specifier: String,
    },
}

/// A function's modules: paths relative to the bundle root (`/`-separated) and their sources.
#[derive(Clone, PartialEq, Eq)]
pub struct Bundle {
    entry: String,
    modules: BTreeMap<String, String>,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the sources (plaintext code inside the TEE).
        f.debug_struct("Bundle")
            .field("entry", &self.entry)
            .field("modules", &self.modules.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Bundle {
    /// A bundle of `modules` (path to source) starting at `entry`.
    ///
    /// # Errors
    /// An invalid path, a missing entry, no module or too many modules.
    pub fn new(entry: &str, modules: BTreeMap<String, String>) -> Result<Self, BundleError> {
        if modules.len() > MAX_MODULES {
            return Err(BundleError::TooManyModules);
        }
        for path in modules.keys() {
            check_path(path)?;
        }
        if !modules.contains_key(entry) {
            return Err(BundleError::MissingEntry(entry.to_owned()));
        }
        Ok(Self {
            entry: entry.to_owned(),
            modules,
        })
    }

    /// The entry module's path.
    #[must_use]
    pub fn entry(&self) -> &str {
        &self.entry
    }

    /// The modules, by path.
    #[must_use]
    pub fn modules(&self) -> &BTreeMap<String, String> {
        &self.modules
    }

    /// The code text whose SHA-256 is the code hash: the entry's source when it is the only
    /// module, else the canonical encoding.
    #[must_use]
    pub fn encode(&self) -> String {
        if self.modules.len() == 1
            && let Some(src) = self.modules.get(&self.entry)
        {
            return src.clone();
        }
        let size = MAGIC.len()
            + self.entry.len()
            + 24
            + self
                .modules
                .iter()
                .map(|(p, s)| p.len() + s.len() + 48)
                .sum::<usize>();
        let mut out = String::with_capacity(size);
        out.push_str(MAGIC);
        push_field(&mut out, &self.entry);
        for (path, src) in &self.modules {
            push_field(&mut out, path);
            push_field(&mut out, src);
        }
        out
    }

    /// Parse code text: `Ok(None)` when it is a single module (does not start with [`MAGIC`]).
    ///
    /// # Errors
    /// Text that starts with [`MAGIC`] but is not a canonical encoding (bad lengths, unsorted or
    /// repeated paths, fewer than two modules, trailing bytes, an invalid path, a missing entry).
    pub fn decode(code: &str) -> Result<Option<Self>, BundleError> {
        let Some(mut rest) = code.strip_prefix(MAGIC) else {
            return Ok(None);
        };
        let entry = take_field(&mut rest)?;
        let mut modules = BTreeMap::new();
        let mut last: Option<&str> = None;
        while !rest.is_empty() {
            let path = take_field(&mut rest)?;
            let src = take_field(&mut rest)?;
            if last.is_some_and(|l| l >= path) {
                return Err(BundleError::Malformed(
                    "module paths are not in strictly increasing byte order",
                ));
            }
            last = Some(path);
            if modules.len() == MAX_MODULES {
                return Err(BundleError::TooManyModules);
            }
            modules.insert(path.to_owned(), src.to_owned());
        }
        if modules.len() < 2 {
            return Err(BundleError::Malformed(
                "a bundle holds at least two modules (one module is deployed as its source)",
            ));
        }
        Self::new(entry, modules).map(Some)
    }
}

fn push_field(out: &mut String, s: &str) {
    out.push_str(&s.len().to_string());
    out.push(':');
    out.push_str(s);
    out.push('\n');
}

/// One `length ":" bytes "\n"` field from the front of `rest`.
fn take_field<'a>(rest: &mut &'a str) -> Result<&'a str, BundleError> {
    let colon = rest
        .find(':')
        .filter(|&i| i <= 20)
        .ok_or(BundleError::Malformed(
            "a field does not start with its length",
        ))?;
    let digits = &rest[..colon];
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return Err(BundleError::Malformed(
            "a field length is not a decimal number without leading zeros",
        ));
    }
    let len: usize = digits
        .parse()
        .map_err(|_| BundleError::Malformed("a field length is too large"))?;
    let body = &rest[colon + 1..];
    let value = body
        .get(..len)
        .ok_or(BundleError::Malformed("a field is shorter than its length"))?;
    let after = &body[len..];
    let after = after.strip_prefix('\n').ok_or(BundleError::Malformed(
        "a field does not end with a newline",
    ))?;
    *rest = after;
    Ok(value)
}

/// Check a module path: relative, `/`-separated, no empty, `.` or `..` segments, no backslash,
/// colon or control character, at most [`MAX_PATH_BYTES`].
///
/// # Errors
/// [`BundleError::InvalidPath`] saying why.
pub fn check_path(path: &str) -> Result<(), BundleError> {
    let bad = |reason| {
        Err(BundleError::InvalidPath {
            path: path.to_owned(),
            reason,
        })
    };
    if path.is_empty() {
        return bad("empty");
    }
    if path.len() > MAX_PATH_BYTES {
        return bad("longer than 1024 bytes");
    }
    if path.starts_with('/') {
        return bad("absolute (must be relative to the bundle root)");
    }
    if path
        .chars()
        .any(|c| c == '\\' || c == ':' || c.is_control())
    {
        // ':' keeps module names apart from the prelude's (`clave:…`) and from URLs.
        return bad("contains a backslash, a colon or a control character");
    }
    if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return bad("has an empty, '.' or '..' segment");
    }
    Ok(())
}

/// Whether `specifier` is bare (a package name such as `lodash` or `@scope/pkg/x.js`).
#[must_use]
pub fn is_bare(specifier: &str) -> bool {
    !(specifier.starts_with("./")
        || specifier.starts_with("../")
        || specifier.starts_with('/')
        || specifier == "."
        || specifier == ".."
        || has_scheme(specifier))
}

fn has_scheme(s: &str) -> bool {
    s.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    })
}

/// The bundle path `specifier` names when the module at `importer` imports it.
///
/// Relative specifiers (`./x.js`, `../lib/y.js`) resolve against the importer's directory, exactly
/// (no extension is added). A bare specifier names a vendored package under [`VENDOR_DIR`]:
/// `pkg` is `node_modules/pkg/index.js`, `@scope/pkg` is `node_modules/@scope/pkg/index.js`,
/// `pkg/sub/x.js` is `node_modules/pkg/sub/x.js`. URLs, `node:` built-ins and absolute paths are
/// refused.
///
/// # Errors
/// [`BundleError::EscapesRoot`], [`BundleError::Unsupported`] or an invalid resulting path.
pub fn resolve(importer: &str, specifier: &str) -> Result<String, BundleError> {
    if has_scheme(specifier) || specifier.starts_with('/') {
        return Err(BundleError::Unsupported {
            importer: importer.to_owned(),
            specifier: specifier.to_owned(),
        });
    }
    let joined = if is_bare(specifier) {
        let segments = specifier.split('/').count();
        let package_only = segments == 1 || (specifier.starts_with('@') && segments == 2);
        if package_only {
            format!("{VENDOR_DIR}/{specifier}/index.js")
        } else {
            format!("{VENDOR_DIR}/{specifier}")
        }
    } else {
        match importer.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/{specifier}"),
            None => specifier.to_owned(),
        }
    };
    let mut out: Vec<&str> = Vec::new();
    for seg in joined.split('/') {
        match seg {
            "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(BundleError::EscapesRoot {
                        importer: importer.to_owned(),
                        specifier: specifier.to_owned(),
                    });
                }
            }
            s => out.push(s),
        }
    }
    let path = out.join("/");
    check_path(&path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> Bundle {
        let mut m = BTreeMap::new();
        m.insert("index.js".to_owned(), "import './lib/a.js';\n".to_owned());
        m.insert("lib/a.js".to_owned(), "export const a = 'é';".to_owned());
        Bundle::new("index.js", m).expect("valid")
    }

    #[test]
    fn encoding_is_exact_and_round_trips() {
        let b = two();
        let code = b.encode();
        assert_eq!(
            code,
            "\0clave-bundle/1\n8:index.js\n8:index.js\n21:import './lib/a.js';\n\n8:lib/a.js\n22:export const a = 'é';\n"
        );
        assert_eq!(Bundle::decode(&code), Ok(Some(b)));
        assert_eq!(Bundle::decode("export default {}"), Ok(None));
    }

    #[test]
    fn one_module_is_its_source() {
        let mut m = BTreeMap::new();
        m.insert("w.js".to_owned(), "export default {}".to_owned());
        let b = Bundle::new("w.js", m).expect("valid");
        assert_eq!(b.encode(), "export default {}");
    }

    #[test]
    fn decode_refuses_non_canonical_text() {
        let good = two().encode();
        let malformed = |why| BundleError::Malformed(why);
        let no_length = malformed("a field does not start with its length");
        let no_newline = malformed("a field does not end with a newline");
        let unsorted = malformed("module paths are not in strictly increasing byte order");
        let cases = [
            (
                good.replacen("8:lib", "08:lib", 1),
                malformed("a field length is not a decimal number without leading zeros"),
            ),
            (
                good.replacen("8:lib/a.js", "9:lib/a.js", 1),
                no_newline.clone(),
            ),
            (format!("{good}x"), no_length.clone()),
            (good[..good.len() - 1].to_owned(), no_newline),
            // Unsorted.
            (
                "\0clave-bundle/1\n4:b.js\n4:b.js\n0:\n4:a.js\n0:\n".to_owned(),
                unsorted.clone(),
            ),
            // Repeated.
            (
                "\0clave-bundle/1\n4:a.js\n4:a.js\n0:\n4:a.js\n0:\n".to_owned(),
                unsorted,
            ),
            // One module.
            (
                "\0clave-bundle/1\n4:a.js\n4:a.js\n0:\n".to_owned(),
                malformed(
                    "a bundle holds at least two modules (one module is deployed as its source)",
                ),
            ),
            // Entry missing.
            (
                "\0clave-bundle/1\n4:c.js\n4:a.js\n0:\n4:b.js\n0:\n".to_owned(),
                BundleError::MissingEntry("c.js".to_owned()),
            ),
            // Bad path (sorted after "a.js", so the path check is what refuses it).
            (
                "\0clave-bundle/1\n4:a.js\n4:a.js\n0:\n9:b/../c.js\n0:\n".to_owned(),
                BundleError::InvalidPath {
                    path: "b/../c.js".to_owned(),
                    reason: "has an empty, '.' or '..' segment",
                },
            ),
            ("\0clave-bundle/1\n".to_owned(), no_length.clone()),
            (
                "\0clave-bundle/1\n99999999999999999999999:".to_owned(),
                no_length,
            ),
            (
                "\0clave-bundle/1\n99999999999999999999:".to_owned(),
                malformed("a field length is too large"),
            ),
        ];
        for (c, want) in cases {
            assert_eq!(Bundle::decode(&c), Err(want), "{c:?}");
        }
    }

    #[test]
    fn resolution() {
        assert_eq!(resolve("index.js", "./a.js").as_deref(), Ok("a.js"));
        assert_eq!(resolve("src/x/i.js", "../a.js").as_deref(), Ok("src/a.js"));
        assert_eq!(
            resolve("src/i.js", "./b/./c.js").as_deref(),
            Ok("src/b/c.js")
        );
        assert_eq!(
            resolve("src/i.js", "lodash").as_deref(),
            Ok("node_modules/lodash/index.js")
        );
        assert_eq!(
            resolve("src/i.js", "@s/p").as_deref(),
            Ok("node_modules/@s/p/index.js")
        );
        assert_eq!(
            resolve("src/i.js", "pkg/x.js").as_deref(),
            Ok("node_modules/pkg/x.js")
        );
        assert!(matches!(
            resolve("src/i.js", "../../a.js"),
            Err(BundleError::EscapesRoot { .. })
        ));
        assert!(matches!(
            resolve("i.js", "node:fs"),
            Err(BundleError::Unsupported { .. })
        ));
        assert!(matches!(
            resolve("i.js", "https://x.example/m.js"),
            Err(BundleError::Unsupported { .. })
        ));
        assert!(matches!(
            resolve("i.js", "/etc/passwd"),
            Err(BundleError::Unsupported { .. })
        ));
        let invalid = |path: &str, reason| BundleError::InvalidPath {
            path: path.to_owned(),
            reason,
        };
        assert_eq!(resolve("i.js", "./"), Err(invalid("", "empty")));
        assert_eq!(
            resolve("i.js", ".//a.js"),
            Err(invalid(
                "/a.js",
                "absolute (must be relative to the bundle root)"
            ))
        );
        let odd = "contains a backslash, a colon or a control character";
        assert_eq!(check_path("a\\b.js"), Err(invalid("a\\b.js", odd)));
        assert_eq!(
            check_path("clave:prelude"),
            Err(invalid("clave:prelude", odd))
        );
    }
}
