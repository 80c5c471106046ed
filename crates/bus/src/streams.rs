//! The four JetStream streams and their idempotent set-up at start-up.
//!
//! | stream   | subjects              | written by | read by |
//! |----------|-----------------------|------------|---------|
//! | EVENTS   | `registry.events.>`   | feeders    | ingest  |
//! | ACCEPTED | `registry.accepted.>` | ingest     | projector (one consumer per partition) |
//! | ALERTS   | `registry.alerts.>`   | projector  | alerts / webhook bridge, api |
//! | REJECTED | `registry.rejected.>` | ingest     | sites, operators |
//!
//! All use file storage, limits retention (messages stay after being consumed, so a consumer
//! can replay: a restored store catches up, a projector rebuilds), discard-old, the configured
//! duplicate window and replica count. [`stream_configs`] is pure, [`ensure_streams`] applies it.

use async_nats::jetstream::{self, stream};

use crate::config::{BusConfig, StreamLimits};
use crate::error::BusError;
use crate::subjects::{ACCEPTED_ALL, ALERTS_ALL, EVENTS_ALL, REJECTED_ALL};

/// Stream of incoming events from the feeders.
pub const EVENTS: &str = "EVENTS";
/// Stream of accepted events, partitioned by patient.
pub const ACCEPTED: &str = "ACCEPTED";
/// Stream of alerts.
pub const ALERTS: &str = "ALERTS";
/// Stream of rejections.
pub const REJECTED: &str = "REJECTED";

fn stream_config(
    name: &str,
    subject: &str,
    description: &str,
    limits: &StreamLimits,
    cfg: &BusConfig,
) -> stream::Config {
    stream::Config {
        name: name.to_owned(),
        description: Some(description.to_owned()),
        subjects: vec![subject.to_owned()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_age: limits.max_age,
        // -1 is the server's "unlimited"; sending it explicitly keeps an update a no-op.
        max_bytes: limits
            .max_bytes
            .and_then(|bytes| i64::try_from(bytes).ok())
            .unwrap_or(-1),
        max_messages: -1,
        max_messages_per_subject: -1,
        max_consumers: -1,
        // The window cannot exceed max_age (server rule); a zero max_age means "forever".
        duplicate_window: if limits.max_age.is_zero() {
            cfg.duplicate_window
        } else {
            cfg.duplicate_window.min(limits.max_age)
        },
        num_replicas: cfg.replicas.max(1),
        ..Default::default()
    }
}

/// The desired configuration of the four streams, in the order EVENTS, ACCEPTED, ALERTS,
/// REJECTED. Pure: what [`ensure_streams`] sends to the server.
pub fn stream_configs(cfg: &BusConfig) -> Vec<stream::Config> {
    vec![
        stream_config(
            EVENTS,
            EVENTS_ALL,
            "Incoming clinical events from the sites, subject registry.events.<site>.<type>",
            &cfg.events,
            cfg,
        ),
        stream_config(
            ACCEPTED,
            ACCEPTED_ALL,
            "Events accepted by ingest, subject registry.accepted.<partition>",
            &cfg.accepted,
            cfg,
        ),
        stream_config(
            ALERTS,
            ALERTS_ALL,
            "Alerts raised by the projector, subject registry.alerts.<kind>",
            &cfg.alerts,
            cfg,
        ),
        stream_config(
            REJECTED,
            REJECTED_ALL,
            "Rejected events with their reason, subject registry.rejected.<site>",
            &cfg.rejected,
            cfg,
        ),
    ]
}

/// Creates the four streams, or updates them to `cfg` if they exist. Idempotent: running it
/// again with the same config changes nothing; a changed config (max age, duplicate window,
/// replicas) is applied. Changes the server refuses (e.g. storage type) are
/// [`BusError::StreamSetup`].
#[tracing::instrument(skip_all, err)]
pub async fn ensure_streams(
    js: &jetstream::Context,
    cfg: &BusConfig,
) -> Result<Vec<stream::Info>, BusError> {
    let mut infos = Vec::with_capacity(4);
    for config in stream_configs(cfg) {
        let name = config.name.clone();
        let info =
            js.create_or_update_stream(config)
                .await
                .map_err(|source| BusError::StreamSetup {
                    stream: name.clone(),
                    source,
                })?;
        tracing::info!(
            stream = %name,
            messages = info.state.messages,
            replicas = info.config.num_replicas,
            "stream ready"
        );
        infos.push(info);
    }
    Ok(infos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn configs_follow_the_settings() {
        let cfg = BusConfig {
            replicas: 3,
            ..BusConfig::default()
        };
        let configs = stream_configs(&cfg);
        let names: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, [EVENTS, ACCEPTED, ALERTS, REJECTED]);
        for c in &configs {
            assert_eq!(c.storage, stream::StorageType::File);
            assert_eq!(c.num_replicas, 3);
            assert_eq!(c.duplicate_window, Duration::from_secs(120));
            assert_eq!(c.retention, stream::RetentionPolicy::Limits);
        }
        assert_eq!(configs[0].subjects, ["registry.events.>"]);
        assert_eq!(configs[0].max_age, Duration::from_secs(365 * 86_400));
    }

    #[test]
    fn duplicate_window_never_exceeds_max_age() {
        let mut cfg = BusConfig::default();
        cfg.alerts.max_age = Duration::from_secs(30);
        let configs = stream_configs(&cfg);
        assert_eq!(configs[2].duplicate_window, Duration::from_secs(30));
    }
}
