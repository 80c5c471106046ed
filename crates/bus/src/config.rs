//! Bus configuration: where the server is, how to authenticate, how the streams are set up.
//!
//! Plain data with defaults that match docs/bus.md; the binary fills it from its settings
//! (files + `REGISTRY_…` env overrides). Secrets live in [`Secret`], which never prints its value.

use std::fmt;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// A secret string (password, token). `Debug` and `Display` print `[REDACTED]`; the value is
/// only reachable through [`Secret::expose`], so it does not end up in logs by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for handing to the client library. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

/// How the client authenticates to nats-server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No authentication (local development, tests).
    #[default]
    None,
    /// A user and password from the server's `authorization`/`accounts` block.
    UserPassword {
        /// The user name (not secret).
        user: String,
        /// The password.
        password: Secret,
    },
    /// A bearer token.
    Token(Secret),
    /// A `.creds` file (JWT + NKey seed) for operator/decentralised auth.
    CredsFile(PathBuf),
}

/// Settings of one JetStream stream that operators tune.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLimits {
    /// Messages older than this are removed (`Duration::ZERO` = keep forever).
    pub max_age: Duration,
    /// Upper bound on the stream's size in bytes; `None` = unlimited (oldest discarded when hit).
    pub max_bytes: Option<u64>,
}

impl StreamLimits {
    /// Limits with only a maximum age.
    pub fn max_age(max_age: Duration) -> Self {
        StreamLimits {
            max_age,
            max_bytes: None,
        }
    }
}

/// Everything `connect`, `ensure_streams` and the publishers need to know.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// Server URL(s), comma-separated for a cluster: `nats://n1:4222,nats://n2:4222`.
    pub url: String,
    /// Client name shown in the server's monitoring (`registry-ingest`, …).
    pub client_name: String,
    /// How to authenticate.
    pub credentials: Credentials,
    /// Inbox prefix for replies (JetStream acks, request/reply). Site users may subscribe only
    /// to `_INBOX.<site>.>` in deploy/nats-sites.conf, so feeders set `_INBOX.<site>`.
    /// `None` = the client default `_INBOX`.
    pub inbox_prefix: Option<String>,
    /// How long start-up keeps retrying the first connection before giving up.
    pub initial_connect_timeout: Duration,
    /// Timeout of one JetStream API request or publish ack.
    pub request_timeout: Duration,
    /// Window inside which the server drops a repeated `Nats-Msg-Id` (all streams).
    pub duplicate_window: Duration,
    /// Replicas per stream: 1 on a single node, 3 on the 3-node cluster (deploy/nats-cluster).
    pub replicas: usize,
    /// Number of ACCEPTED partitions (`registry.accepted.<0..N>`), one projector each.
    pub partitions: NonZeroU32,
    /// EVENTS: long, so a store restored from backup can catch up by replaying.
    pub events: StreamLimits,
    /// ACCEPTED: long, so a projector can rebuild by replaying its partition.
    pub accepted: StreamLimits,
    /// ALERTS: subscribers and the webhook bridge catch up within this age.
    pub alerts: StreamLimits,
    /// REJECTED: kept for the sites to fix and resend; the ingest store keeps them for good.
    pub rejected: StreamLimits,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            url: "nats://127.0.0.1:4222".to_owned(),
            client_name: "registry".to_owned(),
            credentials: Credentials::None,
            inbox_prefix: None,
            initial_connect_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(5),
            duplicate_window: Duration::from_secs(2 * 60),
            replicas: 1,
            partitions: NonZeroU32::MIN,
            events: StreamLimits::max_age(365 * DAY),
            accepted: StreamLimits::max_age(365 * DAY),
            alerts: StreamLimits::max_age(90 * DAY),
            rejected: StreamLimits::max_age(365 * DAY),
        }
    }
}

impl BusConfig {
    /// The default config pointed at `url`.
    pub fn with_url(url: impl Into<String>) -> Self {
        BusConfig {
            url: url.into(),
            ..BusConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let cfg = BusConfig {
            credentials: Credentials::UserPassword {
                user: "ingest".to_owned(),
                password: Secret::new("hunter2"),
            },
            ..BusConfig::default()
        };
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("ingest"));
        assert_eq!(Secret::new("hunter2").to_string(), "[REDACTED]");
        assert_eq!(
            format!("{:?}", Credentials::Token(Secret::new("t0k"))),
            "Token(Secret([REDACTED]))"
        );
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let cfg = BusConfig::default();
        assert_eq!(cfg.duplicate_window, Duration::from_secs(120));
        assert_eq!(cfg.events.max_age, Duration::from_secs(365 * 86_400));
        assert_eq!(cfg.replicas, 1);
        assert_eq!(cfg.partitions.get(), 1);
    }
}
