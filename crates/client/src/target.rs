//! The method and the path and query a call hands to the function.

use clave_proto::invoke::DEFAULT_METHOD;

/// What the function sees as `request.method` and, after `https://clave/{project}/{function}`,
/// in `request.url`. The default is `POST` with no path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// HTTP method, e.g. `GET` (an RFC 9110 token).
    pub method: String,
    /// Path and query after the function name, e.g. `/items?id=3`: empty, or starting with `/`
    /// or `?`, visible ASCII without `#` (percent-encode anything else).
    pub path: String,
}

impl Default for Target {
    fn default() -> Self {
        Self {
            method: DEFAULT_METHOD.to_owned(),
            path: String::new(),
        }
    }
}

impl Target {
    /// A method and a path and query (checked when the call is sealed).
    #[must_use]
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
        }
    }
}
