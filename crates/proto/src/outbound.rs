//! Outbound host patterns: the hosts a function may reach with `fetch()`, as listed in its
//! manifest (`"outbound": ["api.example.com", "*.example.net"]`).
//!
//! A pattern is a DNS host name in lower-case LDH form (letters, digits, hyphens; international
//! names in their `xn--` form), at least two labels, no trailing dot, no port and no IP address.
//! It may start with `*.`, which stands for exactly one label: `*.example.net` matches
//! `a.example.net` but neither `example.net` nor `a.b.example.net`. A wildcard needs at least two
//! labels after it (`*.com` is refused).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Most patterns a manifest may list.
pub const MAX_OUTBOUND_HOSTS: usize = 64;

/// Longest host name (RFC 1035), without a trailing dot.
const MAX_HOST_LEN: usize = 253;

/// One validated outbound host pattern (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostPattern(String);

impl HostPattern {
    /// Validates `pattern`. Upper-case letters are refused, not folded: the manifest shows
    /// exactly what is enforced (the CLI lower-cases what a developer types).
    ///
    /// # Errors
    /// [`Error::InvalidHostPattern`] saying what is wrong.
    pub fn parse(pattern: &str) -> Result<Self> {
        let bad = |reason: &'static str| Error::InvalidHostPattern {
            pattern: pattern.chars().take(300).collect(),
            reason,
        };
        let (wild, name) = match pattern.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        if name.is_empty() {
            return Err(bad("it is empty"));
        }
        if name.len() > MAX_HOST_LEN {
            return Err(bad("it is longer than 253 characters"));
        }
        if name.contains('*') {
            return Err(bad(
                "a wildcard may only be the whole first label, as in *.example.com",
            ));
        }
        if name.contains(':') || name.contains('/') || name.contains('[') {
            return Err(bad(
                "name a host only (no scheme, port, path or IPv6 address)",
            ));
        }
        if !name.is_ascii() {
            return Err(bad("write an international name in its ASCII (xn--) form"));
        }
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad("write it in lower case"));
        }
        if name.ends_with('.') {
            return Err(bad("drop the trailing dot"));
        }
        let labels: Vec<&str> = name.split('.').collect();
        for label in &labels {
            if label.is_empty() {
                return Err(bad("it has an empty label (two dots in a row)"));
            }
            if label.len() > 63 {
                return Err(bad("a label is longer than 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(bad("a label may contain only letters, digits and hyphens"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(bad("a label may not start or end with a hyphen"));
            }
        }
        if labels
            .last()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(bad(
                "IP addresses are not supported: name the host its certificate is issued to",
            ));
        }
        if labels.len() < 2 {
            return Err(bad(if wild {
                "a wildcard needs at least two labels after it, as in *.example.com"
            } else {
                "name a full host, as in api.example.com"
            }));
        }
        Ok(Self(pattern.to_owned()))
    }

    /// The pattern text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True if `host` (a lower-case DNS name, as a parsed URL's host is) matches the pattern.
    #[must_use]
    pub fn matches(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        match self.0.strip_prefix("*.") {
            None => host == self.0,
            Some(suffix) => host
                .strip_suffix(suffix)
                .and_then(|head| head.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        }
    }
}

impl TryFrom<String> for HostPattern {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<HostPattern> for String {
    fn from(p: HostPattern) -> String {
        p.0
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// True if some pattern of `list` matches `host`.
#[must_use]
pub fn allows(list: &[HostPattern], host: &str) -> bool {
    list.iter().any(|p| p.matches(host))
}

/// Checks a manifest's list: at most [`MAX_OUTBOUND_HOSTS`] patterns.
///
/// # Errors
/// [`Error::InvalidHostPattern`] when the list is too long.
pub fn check_list(list: &[HostPattern]) -> Result<()> {
    if list.len() > MAX_OUTBOUND_HOSTS {
        return Err(Error::InvalidHostPattern {
            pattern: format!("{} patterns", list.len()),
            reason: "a manifest lists at most 64 outbound hosts",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn valid_patterns() {
        for s in [
            "api.example.com",
            "*.example.com",
            "a-b.c0.example",
            "xn--bcher-kva.example",
            "localhost.test",
        ] {
            assert_eq!(ok(s).as_str(), s);
        }
    }

    #[test]
    fn invalid_patterns_say_why() {
        for (s, why) in [
            ("", "empty"),
            ("*.", "empty"),
            ("com", "full host"),
            ("*.com", "two labels"),
            ("**.example.com", "wildcard"),
            ("a.*.example.com", "wildcard"),
            ("*a.example.com", "wildcard"),
            ("api.example.com:443", "port"),
            ("https://api.example.com", "scheme"),
            ("API.example.com", "lower case"),
            ("api.example.com.", "trailing dot"),
            ("api..example.com", "empty label"),
            ("-api.example.com", "hyphen"),
            ("api_x.example.com", "letters, digits"),
            ("bücher.example", "xn--"),
            ("127.0.0.1", "IP"),
            ("[::1]", "IPv6"),
        ] {
            let e = HostPattern::parse(s).expect_err(s).to_string();
            assert!(e.contains(why), "{s}: {e}");
        }
        let long = format!("{}.example.com", "a".repeat(64));
        let e = HostPattern::parse(&long)
            .expect_err("64-char label")
            .to_string();
        assert!(e.contains("longer than 63"), "{e}");
        let longer = format!("{}example.com", "abcdefghi.".repeat(26));
        let e = HostPattern::parse(&longer)
            .expect_err("over 253")
            .to_string();
        assert!(e.contains("longer than 253"), "{e}");
    }

    #[test]
    fn matching() {
        let exact = ok("api.example.com");
        assert!(exact.matches("api.example.com"));
        assert!(exact.matches("api.example.com."));
        assert!(!exact.matches("x.api.example.com"));
        assert!(!exact.matches("example.com"));
        assert!(!exact.matches("api.example.com.evil"));
        let wild = ok("*.example.com");
        assert!(wild.matches("a.example.com"));
        assert!(!wild.matches("example.com"));
        assert!(!wild.matches("a.b.example.com"));
        assert!(!wild.matches(".example.com"));
        assert!(!wild.matches("aexample.com"));
        assert!(!wild.matches("a.example.com.evil"));
        assert!(allows(&[exact, wild], "b.example.com"));
        assert!(!allows(&[], "api.example.com"));
    }

    #[test]
    fn serde_validates() {
        let v: Vec<HostPattern> =
            serde_json::from_str(r#"["a.example","*.b.example"]"#).expect("parses");
        assert_eq!(v.len(), 2);
        assert_eq!(
            serde_json::to_string(&v).expect("serializes"),
            r#"["a.example","*.b.example"]"#
        );
        let e = serde_json::from_str::<Vec<HostPattern>>(r#"["*.com"]"#)
            .expect_err("*.com")
            .to_string();
        assert!(e.contains("a wildcard needs at least two labels"), "{e}");
        let e = serde_json::from_str::<Vec<HostPattern>>(r#"[1]"#)
            .expect_err("a number")
            .to_string();
        assert!(e.contains("expected a string"), "{e}");
    }

    #[test]
    fn manifests_with_and_without_outbound() {
        use crate::code::Manifest;
        let old = br#"{"name":"f","code_hash":"0000000000000000000000000000000000000000000000000000000000000000","entry":"index.js","limits":{"cpu_ms":1,"heap_bytes":1,"stack_bytes":1,"max_request_bytes":1,"max_response_bytes":1,"max_console_bytes":1},"created":1}"#;
        let m = Manifest::from_bytes(old).expect("a manifest without the field parses");
        assert!(m.outbound.is_empty());
        assert_eq!(m.to_bytes(), old.to_vec(), "no outbound: the same bytes");
        let mut with = m.clone();
        with.outbound = vec![ok("api.example.com"), ok("*.example.net")];
        let bytes = with.to_bytes();
        assert!(
            String::from_utf8_lossy(&bytes)
                .ends_with(r#","outbound":["api.example.com","*.example.net"]}"#)
        );
        assert_eq!(Manifest::from_bytes(&bytes).expect("round trip"), with);
        let text = String::from_utf8_lossy(&bytes).replace("*.example.net", "*.net");
        let r = Manifest::from_bytes(text.as_bytes());
        assert!(
            matches!(&r, Err(Error::InvalidJson { reason, .. }) if reason.contains("*.net")),
            "{r:?}"
        );
        let mut many = m;
        many.outbound = (0..=MAX_OUTBOUND_HOSTS)
            .map(|i| ok(&format!("h{i}.example")))
            .collect();
        assert!(matches!(
            Manifest::from_bytes(&many.to_bytes()),
            Err(Error::InvalidHostPattern { .. })
        ));
    }
}
