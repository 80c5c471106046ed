//! registry-bus against a real nats-server (registry-testsupport): stream set-up is idempotent
//! and follows config changes, duplicates inside the window are dropped, consumers redeliver
//! what was not acked, publishes ride over a server restart.

use std::num::NonZeroU32;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use registry_bus::publish::{publish_with_id_and_policy, RetryPolicy};
use registry_bus::subjects::{self, parse_events_subject};
use registry_bus::{
    connect_jetstream, durable_pull_consumer, ensure_streams, publish_with_id, BusConfig, BusError,
    ACCEPTED, ALERTS, EVENTS, REJECTED,
};
use registry_testsupport::NatsServer;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn config(server: &NatsServer) -> BusConfig {
    BusConfig {
        client_name: "registry-bus-test".to_owned(),
        initial_connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(2),
        ..BusConfig::with_url(server.url())
    }
}

#[tokio::test]
async fn ensure_streams_twice_is_a_no_op_and_a_config_change_updates() -> TestResult {
    let server = NatsServer::start()?;
    let cfg = config(&server);
    let (_client, js) = connect_jetstream(&cfg).await?;

    let first = ensure_streams(&js, &cfg).await?;
    let names: Vec<&str> = first.iter().map(|info| info.config.name.as_str()).collect();
    assert_eq!(names, [EVENTS, ACCEPTED, ALERTS, REJECTED]);

    let subject = subjects::events_subject("fuscc", "patient.enrolled")?;
    publish_with_id(&js, &subject, "e-1", None, Bytes::from_static(b"{}")).await?;

    let second = ensure_streams(&js, &cfg).await?;
    for (before, after) in first.iter().zip(&second) {
        assert_eq!(
            before.created, after.created,
            "{} not recreated",
            before.config.name
        );
        assert_eq!(before.config.max_age, after.config.max_age);
        assert_eq!(
            before.config.duplicate_window,
            after.config.duplicate_window
        );
    }
    assert_eq!(
        second[0].state.messages, 1,
        "the event survived the second set-up"
    );

    let changed = BusConfig {
        duplicate_window: Duration::from_secs(60),
        events: registry_bus::StreamLimits::max_age(Duration::from_secs(30 * 86_400)),
        ..cfg.clone()
    };
    let third = ensure_streams(&js, &changed).await?;
    assert_eq!(third[0].config.max_age, Duration::from_secs(30 * 86_400));
    assert_eq!(third[0].config.duplicate_window, Duration::from_secs(60));
    assert_eq!(third[0].created, first[0].created, "updated in place");
    assert_eq!(third[0].state.messages, 1);
    Ok(())
}

#[tokio::test]
async fn same_event_id_inside_the_window_is_stored_once() -> TestResult {
    let server = NatsServer::start()?;
    let cfg = config(&server);
    let (_client, js) = connect_jetstream(&cfg).await?;
    ensure_streams(&js, &cfg).await?;
    let subject = subjects::events_subject("pumch", "imaging.assessed")?;
    let event_id = "5b0e1f0a-3c1d-4f7e-9a55-0c3f1d2e4b61";

    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Registry-Schema-Version", "1");
    let first = publish_with_id(&js, &subject, event_id, Some(headers), "a".into()).await?;
    let again = publish_with_id(&js, &subject, event_id, None, "a".into()).await?;
    let other = publish_with_id(&js, &subject, "another-id", None, "b".into()).await?;

    assert!(!first.duplicate);
    assert!(
        again.duplicate,
        "same Nats-Msg-Id inside the window is dropped"
    );
    assert_eq!(
        again.seq, first.seq,
        "the duplicate reports the stored sequence"
    );
    assert!(!other.duplicate);
    assert_eq!(other.seq, first.seq + 1);
    let info = js.get_stream(EVENTS).await?.get_info().await?;
    assert_eq!(info.state.messages, 2);

    let stored = js
        .get_stream(EVENTS)
        .await?
        .get_raw_message(first.seq)
        .await?;
    assert_eq!(
        stored
            .headers
            .get("Registry-Schema-Version")
            .map(|v| v.as_str()),
        Some("1"),
        "caller headers are kept next to Nats-Msg-Id"
    );
    Ok(())
}

#[tokio::test]
async fn unacked_message_is_redelivered_after_ack_wait() -> TestResult {
    let server = NatsServer::start()?;
    let cfg = config(&server);
    let (_client, js) = connect_jetstream(&cfg).await?;
    ensure_streams(&js, &cfg).await?;
    let subject = subjects::events_subject("demo", "death.recorded")?;
    publish_with_id(&js, &subject, "e-9", None, "x".into()).await?;

    let ack_wait = Duration::from_secs(1);
    let consumer =
        durable_pull_consumer(&js, EVENTS, "ingest", subjects::EVENTS_ALL, ack_wait, -1).await?;
    // Idempotent: the same call at the next start-up finds the same consumer.
    let again =
        durable_pull_consumer(&js, EVENTS, "ingest", subjects::EVENTS_ALL, ack_wait, -1).await?;
    assert_eq!(again.cached_info().name, "ingest");
    assert_eq!(again.cached_info().config.ack_wait, ack_wait);

    let fetch = |expires: Duration| {
        let consumer = consumer.clone();
        async move {
            consumer
                .fetch()
                .max_messages(1)
                .expires(expires)
                .messages()
                .await
        }
    };

    let mut batch = fetch(Duration::from_millis(500)).await?;
    let first = batch.next().await.ok_or("no first delivery")??;
    assert_eq!(first.info()?.delivered, 1);
    drop(first); // a crash before the effect was durable: no ack

    // Nothing is offered again before ack_wait has passed…
    let mut early = fetch(Duration::from_millis(300)).await?;
    assert!(
        early.next().await.is_none(),
        "not redelivered inside ack_wait"
    );

    // …and after it the same message comes back.
    tokio::time::sleep(ack_wait).await;
    let mut batch = fetch(Duration::from_secs(3)).await?;
    let second = batch.next().await.ok_or("not redelivered")??;
    assert_eq!(second.info()?.delivered, 2);
    assert_eq!(second.info()?.stream_sequence, 1);
    let parsed = parse_events_subject(&second.subject)?;
    assert_eq!(
        (parsed.site_id, parsed.event_type),
        ("demo", "death.recorded")
    );
    second.double_ack().await?;

    let mut after = fetch(Duration::from_millis(300)).await?;
    assert!(
        after.next().await.is_none(),
        "acked message is not redelivered"
    );
    Ok(())
}

#[tokio::test]
async fn publish_retries_until_a_restarted_server_acknowledges() -> TestResult {
    let mut server = NatsServer::start()?;
    let cfg = config(&server);
    let (_client, js) = connect_jetstream(&cfg).await?;
    ensure_streams(&js, &cfg).await?;
    let partitions = NonZeroU32::new(4).ok_or("zero")?;
    let subject = subjects::accepted_subject_for_patient("FUSCC-0042", partitions);

    server.stop();
    let restarter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        server.restart().map(|()| server)
    });
    let policy = RetryPolicy {
        attempts: 12,
        attempt_timeout: Duration::from_secs(2),
    };
    let outcome =
        publish_with_id_and_policy(&js, &subject, "evt-1", None, "p".into(), policy).await?;
    let _server = restarter.join().map_err(|_| "restart thread panicked")??;

    assert_eq!(outcome.seq, 1);
    // Whether or not an earlier attempt got through, the stream holds the event exactly once.
    let again = publish_with_id(&js, &subject, "evt-1", None, "p".into()).await?;
    assert!(again.duplicate);
    let info = js.get_stream(ACCEPTED).await?.get_info().await?;
    assert_eq!(info.state.messages, 1);
    Ok(())
}

#[tokio::test]
async fn publish_without_a_stream_gives_up_as_transient() -> TestResult {
    let server = NatsServer::start()?;
    let cfg = config(&server);
    let (_client, js) = connect_jetstream(&cfg).await?;
    // No ensure_streams: nothing listens on the subject.
    let policy = RetryPolicy {
        attempts: 2,
        attempt_timeout: Duration::from_secs(1),
    };
    let result = publish_with_id_and_policy(
        &js,
        "registry.alerts.progression",
        "a-1",
        None,
        "x".into(),
        policy,
    )
    .await;
    match result {
        Err(err @ BusError::PublishUnacked { attempts: 2, .. }) => {
            assert!(err.is_transient());
        }
        other => {
            return Err(format!("expected PublishUnacked after 2 attempts, got {other:?}").into())
        }
    }
    Ok(())
}

#[tokio::test]
async fn connect_gives_up_after_the_initial_timeout() -> TestResult {
    let port = {
        let server = NatsServer::start()?;
        server.port()
    }; // dropped: nothing listens there any more
    let cfg = BusConfig {
        initial_connect_timeout: Duration::from_millis(500),
        ..BusConfig::with_url(format!("nats://127.0.0.1:{port}"))
    };
    match registry_bus::connect(&cfg).await {
        Err(BusError::Connect { attempts, .. }) => assert!(attempts >= 2, "retried: {attempts}"),
        Err(other) => return Err(format!("expected Connect error, got {other:?}").into()),
        Ok(_) => return Err("connected to a stopped server".into()),
    }
    Ok(())
}
