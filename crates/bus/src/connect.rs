//! Connecting to NATS: credentials, a client name, retry with backoff at start-up, then
//! reconnect forever (a service outlives any server restart or cluster-node failover).

use std::time::Duration;

use async_nats::jetstream;
use async_nats::{Client, ConnectErrorKind, ConnectOptions, Event};
use tokio::time::Instant;

use crate::config::{BusConfig, Credentials};
use crate::error::BusError;

/// First delay between connection attempts; doubled each time up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Cap on the delay between (re)connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Exponential backoff: 100 ms, 200 ms, … capped at 5 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.min(16));
    INITIAL_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

async fn options(cfg: &BusConfig) -> Result<ConnectOptions, BusError> {
    let mut options =
        match &cfg.credentials {
            Credentials::None => ConnectOptions::new(),
            Credentials::UserPassword { user, password } => {
                ConnectOptions::with_user_and_password(user.clone(), password.expose().to_owned())
            }
            Credentials::Token(token) => ConnectOptions::with_token(token.expose().to_owned()),
            Credentials::CredsFile(path) => ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|source| BusError::Credentials {
                    path: path.clone(),
                    source,
                })?,
        };
    let name = cfg.client_name.clone();
    options = options
        .name(&cfg.client_name)
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| backoff(u32::try_from(attempts).unwrap_or(u32::MAX)))
        .request_timeout(Some(cfg.request_timeout))
        .connection_timeout(cfg.request_timeout)
        .event_callback(move |event| {
            let name = name.clone();
            async move {
                match event {
                    Event::Connected => tracing::info!(client = %name, "nats connected"),
                    Event::Disconnected => {
                        tracing::warn!(client = %name, "nats disconnected, reconnecting")
                    }
                    Event::ServerError(err) => {
                        tracing::error!(client = %name, %err, "nats server error")
                    }
                    Event::SlowConsumer(sid) => {
                        tracing::warn!(client = %name, sid, "nats slow consumer")
                    }
                    other => tracing::info!(client = %name, event = %other, "nats event"),
                }
            }
        });
    if let Some(prefix) = &cfg.inbox_prefix {
        options = options.custom_inbox_prefix(prefix);
    }
    Ok(options)
}

/// Connects to the server(s) in `cfg.url` (comma-separated for a cluster). Retries with
/// exponential backoff until `cfg.initial_connect_timeout`; authentication failures are not
/// retried. Once connected the client reconnects forever on its own.
#[tracing::instrument(skip_all, fields(url = %cfg.url, client = %cfg.client_name), err)]
pub async fn connect(cfg: &BusConfig) -> Result<Client, BusError> {
    let addrs: Vec<&str> = cfg
        .url
        .split(',')
        .map(str::trim)
        .filter(|addr| !addr.is_empty())
        .collect();
    let deadline = Instant::now() + cfg.initial_connect_timeout;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match options(cfg).await?.connect(addrs.as_slice()).await {
            Ok(client) => return Ok(client),
            Err(source) => {
                let permanent = matches!(
                    source.kind(),
                    ConnectErrorKind::ServerParse
                        | ConnectErrorKind::Authentication
                        | ConnectErrorKind::AuthorizationViolation
                        | ConnectErrorKind::Tls
                );
                let delay = backoff(attempt);
                if permanent || Instant::now() + delay > deadline {
                    return Err(BusError::Connect {
                        url: cfg.url.clone(),
                        attempts: attempt,
                        source,
                    });
                }
                tracing::warn!(attempt, error = %source, ?delay, "nats not reachable yet, retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// A JetStream context whose API requests and publish acks time out after
/// `cfg.request_timeout`.
pub fn jetstream_context(client: Client, cfg: &BusConfig) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(cfg.request_timeout)
        .build(client)
}

/// [`connect`] then [`jetstream_context`].
pub async fn connect_jetstream(cfg: &BusConfig) -> Result<(Client, jetstream::Context), BusError> {
    let client = connect(cfg).await?;
    let js = jetstream_context(client.clone(), cfg);
    Ok((client, js))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(10), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
