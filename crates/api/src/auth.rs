//! Bearer tokens and their scope. Every route but `/healthz` and `/readyz` needs a token from the
//! configuration; a token sees the whole registry (`*`) or one site's patients only.
//!
//! Token values live in [`Secret`], which never prints: not in logs, not in `Debug` output.
//! Comparison is constant-time in the token's length so that timing does not leak a prefix.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

/// A secret string: `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The value, for the one place that must compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What a token may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every site's patients, and the operational endpoints (`/metrics`).
    All,
    /// Only patients whose site is this one.
    Site(String),
}

impl Scope {
    /// Whether a patient of `site` is visible.
    pub fn sees(&self, site: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Site(s) => s == site,
        }
    }

    fn parse(s: &str) -> Result<Scope, TokenConfigError> {
        let s = s.trim();
        if s == "*" {
            return Ok(Scope::All);
        }
        if registry_domain::events::SiteId::parse(s).is_none() {
            return Err(TokenConfigError::BadSite(s.to_owned()));
        }
        Ok(Scope::Site(s.to_owned()))
    }
}

/// Why the token configuration is unusable. Messages never contain a token value.
#[derive(Debug, thiserror::Error)]
pub enum TokenConfigError {
    #[error("token entry #{0} has no `=`: expected TOKEN=SCOPE (SCOPE `*` or a site id)")]
    NoEquals(usize),
    #[error("token entry #{0} is empty or shorter than 16 characters")]
    TooShort(usize),
    #[error("scope {0:?} is neither `*` nor a site id ([a-z0-9][a-z0-9_-]{{0,31}})")]
    BadSite(String),
    #[error("token configuration file {path}: {message}")]
    File { path: String, message: String },
    #[error("no API token is configured (set REGISTRY_API_TOKENS or tokens in the --config file)")]
    Empty,
}

/// Minimum token length: short tokens are guessable.
pub const MIN_TOKEN_LEN: usize = 16;

/// The configured tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    entries: Vec<(Secret, Scope)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    token: String,
    scope: String,
}

#[derive(Deserialize)]
struct TokenFile {
    #[serde(default)]
    tokens: Vec<FileEntry>,
}

impl Tokens {
    /// Adds one token.
    pub fn insert(&mut self, token: Secret, scope: Scope) {
        self.entries.push((token, scope));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `token1=*,token2=fuscc` (the `REGISTRY_API_TOKENS` form). Whitespace around entries is ignored.
    pub fn parse_env(s: &str) -> Result<Tokens, TokenConfigError> {
        let mut t = Tokens::default();
        for (i, entry) in s.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
            let (tok, scope) = entry.rsplit_once('=').ok_or(TokenConfigError::NoEquals(i + 1))?;
            let tok = tok.trim();
            if tok.len() < MIN_TOKEN_LEN {
                return Err(TokenConfigError::TooShort(i + 1));
            }
            t.insert(Secret::new(tok), Scope::parse(scope)?);
        }
        Ok(t)
    }

    /// A JSON file: `{"tokens":[{"token":"…","scope":"*"},{"token":"…","scope":"fuscc"}]}`.
    pub fn from_file(path: &Path) -> Result<Tokens, TokenConfigError> {
        let err = |message: String| TokenConfigError::File { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        // serde_json's error names a line and column, never the content.
        let file: TokenFile = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        let mut t = Tokens::default();
        for (i, e) in file.tokens.into_iter().enumerate() {
            if e.token.len() < MIN_TOKEN_LEN {
                return Err(TokenConfigError::TooShort(i + 1));
            }
            t.insert(Secret::new(e.token), Scope::parse(&e.scope)?);
        }
        Ok(t)
    }

    /// Appends every token of `other`.
    pub fn extend(&mut self, other: Tokens) {
        self.entries.extend(other.entries);
    }

    /// The scope of a presented token, if it is one of ours.
    pub fn lookup(&self, presented: &str) -> Option<&Scope> {
        // Every entry is compared (no early exit) so that the time does not say which matched.
        let mut found = None;
        for (secret, scope) in &self.entries {
            if ct_eq(secret.expose().as_bytes(), presented.as_bytes()) && found.is_none() {
                found = Some(scope);
            }
        }
        found
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_form_parses_scopes_and_secret_never_prints() {
        let t = Tokens::parse_env("aaaaaaaaaaaaaaaaaaaa=*, bbbbbbbbbbbbbbbbbbbb=fuscc").expect("parses");
        assert_eq!(t.lookup("aaaaaaaaaaaaaaaaaaaa"), Some(&Scope::All));
        assert_eq!(t.lookup("bbbbbbbbbbbbbbbbbbbb"), Some(&Scope::Site("fuscc".into())));
        assert_eq!(t.lookup("bbbbbbbbbbbbbbbbbbb"), None);
        assert!(!format!("{t:?}").contains("aaaa"));
        assert_eq!(format!("{}", Secret::new("x")), "[redacted]");
    }

    #[test]
    fn bad_entries_are_refused_without_echoing_the_token() {
        let e = Tokens::parse_env("short=*").expect_err("too short");
        assert!(!e.to_string().contains("short="));
        assert!(matches!(Tokens::parse_env("aaaaaaaaaaaaaaaaaaaa"), Err(TokenConfigError::NoEquals(1))));
        assert!(matches!(Tokens::parse_env("aaaaaaaaaaaaaaaaaaaa=Bad Site"), Err(TokenConfigError::BadSite(_))));
    }
}
