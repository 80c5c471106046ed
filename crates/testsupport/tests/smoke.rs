//! Smoke tests of the harness against the real protocol: JetStream dedupe by `Nats-Msg-Id`,
//! a durable pull consumer with explicit ack, and a crash-restart keeping stored messages.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use registry_testsupport::NatsServer;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

async fn smoke_stream(js: &jetstream::Context) -> TestResult {
    js.create_stream(stream::Config {
        name: "SMOKE".to_owned(),
        subjects: vec!["smoke.>".to_owned()],
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn same_msg_id_twice_is_stored_once() -> TestResult {
    let server = NatsServer::start()?;
    let client = async_nats::connect(server.url()).await?;
    let js = jetstream::new(client);
    smoke_stream(&js).await?;

    let publish = || {
        jetstream::message::PublishMessage::build()
            .payload("hello".into())
            .message_id("event-1")
    };
    let first = js.send_publish("smoke.a", publish()).await?.await?;
    let second = js.send_publish("smoke.a", publish()).await?.await?;

    assert!(!first.duplicate, "first publish is new");
    assert!(
        second.duplicate,
        "second publish with the same id is a duplicate"
    );
    assert_eq!(
        first.sequence, second.sequence,
        "duplicate reports the stored seq"
    );
    let info = js.get_stream("SMOKE").await?.get_info().await?;
    assert_eq!(info.state.messages, 1);
    Ok(())
}

#[tokio::test]
async fn durable_pull_consumer_with_explicit_ack() -> TestResult {
    let server = NatsServer::start()?;
    let client = async_nats::connect(server.url()).await?;
    let js = jetstream::new(client);
    smoke_stream(&js).await?;
    for i in 0..3 {
        js.publish("smoke.b", format!("m{i}").into()).await?.await?;
    }

    let stream = js.get_stream("SMOKE").await?;
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            "reader",
            consumer::pull::Config {
                durable_name: Some("reader".to_owned()),
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await?;
    let mut batch = consumer
        .fetch()
        .max_messages(3)
        .expires(Duration::from_secs(2))
        .messages()
        .await?;
    let mut payloads = Vec::new();
    while let Some(message) = batch.next().await {
        let message = message?;
        payloads.push(String::from_utf8(message.payload.to_vec())?);
        message.ack().await?;
    }
    assert_eq!(payloads, ["m0", "m1", "m2"]);

    // Acks are fire-and-forget; poll until the server has recorded all three.
    let mut consumer = consumer;
    let mut pending = u64::MAX;
    for _ in 0..50 {
        let info = consumer.info().await?;
        pending = info.num_ack_pending as u64 + info.num_pending;
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pending, 0, "every message acknowledged, nothing left");
    Ok(())
}

#[tokio::test]
async fn message_survives_server_restart_and_client_reconnects() -> TestResult {
    let mut server = NatsServer::start()?;
    let port = server.port();
    let client = async_nats::ConnectOptions::new()
        .max_reconnects(None)
        .reconnect_delay_callback(|_| Duration::from_millis(100))
        .connect(server.url())
        .await?;
    let js = jetstream::new(client.clone());
    smoke_stream(&js).await?;
    let ack = js.publish("smoke.c", "before crash".into()).await?.await?;
    assert_eq!(ack.sequence, 1);

    server.stop();
    assert!(!server.is_running());
    server.restart()?;
    assert_eq!(server.port(), port, "same port after restart");

    // The same client reconnects by itself; the stream was recovered from the store dir.
    let mut info = None;
    for _ in 0..100 {
        match js.get_stream("SMOKE").await {
            Ok(stream) => {
                info = Some(stream.get_info().await?);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let info = info.ok_or("stream not reachable after restart")?;
    assert_eq!(info.state.messages, 1);
    let stored = js.get_stream("SMOKE").await?.get_raw_message(1).await?;
    assert_eq!(&stored.payload[..], b"before crash");
    assert_eq!(
        client.connection_state(),
        async_nats::connection::State::Connected
    );
    Ok(())
}

#[test]
fn drop_kills_the_server() -> TestResult {
    let server = NatsServer::start()?;
    let port = server.port();
    drop(server);
    let refused = std::net::TcpStream::connect(("127.0.0.1", port)).is_err();
    assert!(refused, "nothing listens on the port after drop");
    Ok(())
}
