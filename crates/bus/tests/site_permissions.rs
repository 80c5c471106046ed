//! deploy/nats-sites.conf, run for real: a hospital's user can publish its own events and gets
//! the JetStream ack; it cannot publish as another hospital (permissions violation, no ack,
//! nothing stored); the service users can do their start-up work. Also checks that every
//! deploy/ config parses (`nats-server -t`).

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use registry_bus::publish::{publish_with_id_and_policy, RetryPolicy};
use registry_bus::subjects;
use registry_bus::{
    connect_jetstream, durable_pull_consumer, ensure_streams, BusConfig, BusError, Credentials,
    Secret, EVENTS,
};
use registry_testsupport::{find_nats_server, workspace_root, NatsServer};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Every password variable the deploy configs read, with a throw-away test value.
const PASSWORD_VARS: [(&str, &str); 10] = [
    ("SITE_FUSCC_PASSWORD", "fuscc-test-pw"),
    ("SITE_PUMCH_PASSWORD", "pumch-test-pw"),
    ("SITE_DEMO_PASSWORD", "demo-test-pw"),
    ("REGISTRY_INGEST_PASSWORD", "ingest-test-pw"),
    ("REGISTRY_PROJECTOR_PASSWORD", "projector-test-pw"),
    ("REGISTRY_ALERTS_PASSWORD", "alerts-test-pw"),
    ("REGISTRY_API_PASSWORD", "api-test-pw"),
    ("REGISTRY_ADMIN_PASSWORD", "admin-test-pw"),
    ("NATS_ROUTE_PASSWORD", "route-test-pw"),
    (
        "NATS_ROUTES",
        r#"["nats-route://route:route-test-pw@nats-1:6222"]"#,
    ),
];

fn password(var: &str) -> Secret {
    let value = PASSWORD_VARS
        .iter()
        .find(|(name, _)| *name == var)
        .map(|(_, value)| *value)
        .unwrap_or_default();
    Secret::new(value)
}

fn start_sites_server() -> anyhow::Result<NatsServer> {
    let mut builder =
        NatsServer::builder().config_file(workspace_root()?.join("deploy/nats-sites.conf"));
    for (key, value) in PASSWORD_VARS {
        builder = builder.env(key, value);
    }
    builder.start()
}

fn user_config(server: &NatsServer, user: &str, password_var: &str) -> BusConfig {
    BusConfig {
        client_name: format!("test-{user}"),
        credentials: Credentials::UserPassword {
            user: user.to_owned(),
            password: password(password_var),
        },
        initial_connect_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(2),
        ..BusConfig::with_url(server.url())
    }
}

/// A feeder's config: site user, replies on its own inbox prefix `_INBOX.<site>`.
fn site_config(server: &NatsServer, site: &str, password_var: &str) -> BusConfig {
    BusConfig {
        inbox_prefix: Some(format!("_INBOX.{site}")),
        ..user_config(server, site, password_var)
    }
}

const SHORT: RetryPolicy = RetryPolicy {
    attempts: 2,
    attempt_timeout: Duration::from_secs(1),
};

#[tokio::test]
async fn a_site_publishes_its_own_events_and_cannot_publish_another_sites() -> TestResult {
    let server = start_sites_server()?;

    // The ingest service sets up the streams and its consumer with its own, limited user.
    let ingest = user_config(&server, "ingest", "REGISTRY_INGEST_PASSWORD");
    let (_ingest_client, ingest_js) = connect_jetstream(&ingest).await?;
    ensure_streams(&ingest_js, &ingest).await?;
    durable_pull_consumer(
        &ingest_js,
        EVENTS,
        "ingest",
        subjects::EVENTS_ALL,
        Duration::from_secs(30),
        -1,
    )
    .await?;

    let fuscc = site_config(&server, "fuscc", "SITE_FUSCC_PASSWORD");
    let (_fuscc_client, fuscc_js) = connect_jetstream(&fuscc).await?;

    // Own site: stored and acknowledged.
    let own = subjects::events_subject("fuscc", "patient.enrolled")?;
    let outcome = publish_with_id_and_policy(
        &fuscc_js,
        &own,
        "evt-own",
        None,
        Bytes::from_static(b"{}"),
        SHORT,
    )
    .await?;
    assert_eq!(outcome.seq, 1);
    assert!(!outcome.duplicate);

    // Another site's subject: the server refuses the publish, so no ack ever comes.
    let foreign = subjects::events_subject("pumch", "patient.enrolled")?;
    let refused = publish_with_id_and_policy(
        &fuscc_js,
        &foreign,
        "evt-forged",
        None,
        Bytes::from_static(b"{}"),
        SHORT,
    )
    .await;
    assert!(
        matches!(refused, Err(BusError::PublishUnacked { .. })),
        "publishing as pumch must not be acknowledged: {refused:?}"
    );

    // Nor may a site administer streams (no $JS.API for sites).
    let admin_attempt = fuscc_js.get_stream(EVENTS).await;
    assert!(
        admin_attempt.is_err(),
        "a site must not use the JetStream API"
    );

    // The stream holds the site's own event only; the server logged the violation.
    let info = ingest_js.get_stream(EVENTS).await?.get_info().await?;
    assert_eq!(info.state.messages, 1, "the forged event was not stored");
    let log = server.log();
    assert!(
        log.lines().any(|line| line.contains("user:fuscc")
            && line.contains("Publish Violation")
            && line.contains("\"registry.events.pumch.patient.enrolled\"")),
        "server log shows the violation:\n{log}"
    );
    Ok(())
}

#[tokio::test]
async fn a_site_with_a_wrong_password_is_refused() -> TestResult {
    let server = start_sites_server()?;
    let mut cfg = site_config(&server, "demo", "SITE_DEMO_PASSWORD");
    cfg.credentials = Credentials::UserPassword {
        user: "demo".to_owned(),
        password: Secret::new("not-the-password"),
    };
    match connect_jetstream(&cfg).await {
        Err(BusError::Connect { attempts, .. }) => {
            assert_eq!(attempts, 1, "authorization failures are not retried");
        }
        Err(other) => return Err(format!("expected Connect error, got {other:?}").into()),
        Ok(_) => return Err("connected with a wrong password".into()),
    }
    Ok(())
}

#[test]
fn every_deploy_config_parses() -> TestResult {
    let root = workspace_root()?;
    let binary = find_nats_server()?;
    let configs = [
        "deploy/nats-single.conf",
        "deploy/nats-sites.conf",
        "deploy/nats-cluster/node-1.conf",
        "deploy/nats-cluster/node-2.conf",
        "deploy/nats-cluster/node-3.conf",
    ];
    for config in configs {
        let output = Command::new(&binary)
            .arg("-t")
            .arg("-c")
            .arg(root.join(config))
            .envs(PASSWORD_VARS)
            .output()?;
        assert!(
            output.status.success(),
            "{config} does not parse: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // Fail closed: a missing password variable stops the server from starting.
    let output = Command::new(&binary)
        .arg("-t")
        .arg("-c")
        .arg(root.join("deploy/nats-sites.conf"))
        .envs(
            PASSWORD_VARS
                .iter()
                .filter(|(key, _)| *key != "SITE_PUMCH_PASSWORD")
                .map(|(key, value)| (*key, *value)),
        )
        .env_remove("SITE_PUMCH_PASSWORD")
        .output()?;
    assert!(
        !output.status.success(),
        "config accepted without SITE_PUMCH_PASSWORD"
    );
    Ok(())
}
