//! tend's SMTP pool against a real SMTP server: pipelining when offered,
//! within a message and from one message into the next, plain command by
//! command when not, connections reused without a reset, a connection the
//! server closed replaced without losing or delaying the message, and
//! refusals classified, told apart message by message in a batch and
//! never leaving a session dirty.

mod common;

use std::time::Duration;

use common::smtp::SmtpSink;
use lettre::Address;
use tend::config::settings::Tls;
use tend::deliver::smtp::{SmtpPool, SmtpSettings};
use tend::deliver::transport::SendError;

fn pool(sink: &SmtpSink, size: u32) -> SmtpPool {
    pool_waiting(sink, size, Duration::from_secs(10))
}

/// A pool whose every wait for the server is `timeout` (four times that
/// for a reply within a transaction).
fn pool_waiting(sink: &SmtpSink, size: u32, timeout: Duration) -> SmtpPool {
    SmtpPool::new(SmtpSettings {
        host: "127.0.0.1".into(),
        port: sink.port(),
        tls: Tls::None,
        credentials: None,
        pool_size: size,
        timeout,
        hello: "acme.example".into(),
    })
}

fn address(s: &str) -> Address {
    s.parse().unwrap()
}

fn body(n: usize) -> Vec<u8> {
    format!("From: success@acme.example\r\nSubject: {n}\r\n\r\nHello {n}\r\n.leading dot\r\n")
        .into_bytes()
}

#[tokio::test]
async fn every_line_that_starts_with_a_dot_arrives_as_written() {
    let sink = SmtpSink::start();
    let pool = pool(&sink, 1);
    let bodies = [
        "Subject: dots\r\n\r\n.\r\n..\r\n.a\r\nb.\r\n\r\n.\r\nend\r\n",
        ".starts with a dot\r\n\r\nx.y\r\n\r\n...\r\n",
        "Subject: no final line break\r\n\r\nlast line\r\n.",
    ];
    for body in bodies {
        pool.send(
            &address("success@acme.example"),
            &address("ana@example.com"),
            body.as_bytes(),
        )
        .await
        .unwrap();
    }
    pool.close().await;
    let received = sink.received();
    assert_eq!(received.len(), bodies.len());
    for (body, got) in bodies.iter().zip(&received) {
        // What a message ends with on the wire is CRLF . CRLF; the server
        // keeps the CRLF before it as the message's own.
        assert_eq!(
            got.data.trim_end_matches("\r\n"),
            body.trim_end_matches("\r\n")
        );
    }
}

async fn send(pool: &SmtpPool, to: &str, n: usize) -> Result<String, SendError> {
    pool.send(&address("success@acme.example"), &address(to), &body(n))
        .await
        .map(|accepted| accepted.reply)
}

#[tokio::test]
async fn pipelines_when_offered_and_reuses_one_connection() {
    let sink = SmtpSink::start();
    let pool = pool(&sink, 1);
    for n in 0..20 {
        let reply = send(&pool, "ana@example.com", n).await.unwrap();
        assert!(reply.starts_with("250 "), "{reply}");
    }
    pool.close().await;
    let received = sink.received();
    assert_eq!(received.len(), 20);
    assert_eq!(sink.connections(), 1, "one connection for all");
    assert!(sink.pipelined() > 0, "MAIL, RCPT and DATA went together");
    assert_eq!(received[7].to, vec!["ana@example.com"]);
    assert!(received[7].data.contains("Subject: 7\r\n"));
    assert!(
        received[7].data.contains("\r\n.leading dot"),
        "dot-stuffing undone by the server: {:?}",
        received[7].data
    );
}

/// `n` messages, each to its own recipient unless `to` names one.
fn batch(n: usize, to: impl Fn(usize) -> String) -> Vec<(Address, Vec<u8>)> {
    (0..n).map(|i| (address(&to(i)), body(i))).collect()
}

/// `n` messages, each to its own recipient but the second, to `second`.
fn second_to(second: &str, n: usize) -> Vec<(Address, Vec<u8>)> {
    batch(n, |i| match i {
        1 => second.to_owned(),
        _ => format!("ana+{i}@example.com"),
    })
}

/// Whom the server received each message for, in the order it received them.
fn recipients(sink: &SmtpSink) -> Vec<String> {
    sink.received()
        .into_iter()
        .map(|r| r.to.join(","))
        .collect()
}

async fn send_all(
    pool: &SmtpPool,
    messages: &[(Address, Vec<u8>)],
) -> Vec<Result<String, SendError>> {
    let messages: Vec<(&Address, &[u8])> =
        messages.iter().map(|(to, b)| (to, b.as_slice())).collect();
    pool.send_all(&address("success@acme.example"), &messages)
        .await
        .into_iter()
        .map(|(result, _)| result.map(|accepted| accepted.reply))
        .collect()
}

#[tokio::test]
async fn a_batch_sends_each_content_with_the_next_message_and_every_message_once() {
    let sink = SmtpSink::start();
    let pool = pool(&sink, 2);
    let messages = batch(30, |i| format!("ana+{i}@example.com"));
    let replies = send_all(&pool, &messages).await;
    for reply in &replies {
        assert!(
            reply.as_ref().is_ok_and(|r| r.starts_with("250 ")),
            "{reply:?}"
        );
    }
    pool.close().await;
    let received = sink.received();
    assert_eq!(received.len(), 30);
    for i in 0..30 {
        let to = format!("ana+{i}@example.com");
        let got: Vec<_> = received
            .iter()
            .filter(|r| r.to == vec![to.clone()])
            .collect();
        assert_eq!(got.len(), 1, "{to} got one message");
        assert!(
            got[0].data.contains(&format!("Subject: {i}\r\n")),
            "{to} got its own"
        );
    }
    let connections = sink.connections();
    assert!((1..=2).contains(&connections), "{connections} connections");
    // Every content but each connection's last went with the next MAIL.
    assert_eq!(sink.chained(), 30 - connections);
}

#[tokio::test]
async fn a_refusal_in_a_batch_is_its_own_message_s_and_the_others_go() {
    for sink in [SmtpSink::start(), SmtpSink::start_without_pipelining()] {
        sink.refuse("gone@example.com", 550, "5.1.1 no such user");
        sink.refuse("full@example.com", 451, "4.2.2 mailbox full, try later");
        sink.refuse_content("spam@example.com", 554, "5.7.1 message refused");
        let pool = pool(&sink, 2);
        let to = |i: usize| match i % 5 {
            1 => "gone@example.com".to_owned(),
            2 => "spam@example.com".to_owned(),
            3 => "full@example.com".to_owned(),
            _ => format!("ana+{i}@example.com"),
        };
        let messages = batch(25, to);
        let replies = send_all(&pool, &messages).await;
        for (i, reply) in replies.iter().enumerate() {
            match (i % 5, reply) {
                (1, Err(SendError::Permanent { code: 550, detail })) => {
                    assert!(detail.contains("5.1.1"), "{detail}")
                }
                (2, Err(SendError::Permanent { code: 554, detail })) => {
                    assert!(detail.contains("5.7.1"), "{detail}")
                }
                (
                    3,
                    Err(SendError::Transient {
                        code: Some(451),
                        detail,
                    }),
                ) => {
                    assert!(detail.contains("4.2.2"), "{detail}")
                }
                (0 | 4, Ok(reply)) => assert!(reply.starts_with("250 "), "{reply}"),
                _ => panic!("message {i} to {}: {reply:?}", to(i)),
            }
        }
        let mut received = recipients(&sink);
        received.sort();
        let mut expected: Vec<_> = (0..25)
            .filter(|i| i % 5 == 0 || i % 5 == 4)
            .map(|i| format!("ana+{i}@example.com"))
            .collect();
        expected.sort();
        assert_eq!(received, expected, "each accepted message arrived once");
    }
}

#[tokio::test]
async fn the_message_after_a_refused_content_goes_on_a_fresh_connection() {
    for sink in [SmtpSink::start(), SmtpSink::start_without_pipelining()] {
        sink.refuse_content("spam@example.com", 554, "5.7.1 message refused");
        let pool = pool(&sink, 1);
        let replies = send_all(&pool, &second_to("spam@example.com", 4)).await;
        assert!(replies[0].is_ok(), "{:?}", replies[0]);
        assert!(
            matches!(&replies[1], Err(SendError::Permanent { code: 554, .. })),
            "{:?}",
            replies[1]
        );
        // With pipelining, the next message's MAIL, RCPT and DATA went
        // with the refused content, and the connection went with it: the
        // message goes again on a new one, at once.
        assert!(replies[2].is_ok(), "{:?}", replies[2]);
        assert!(replies[3].is_ok(), "{:?}", replies[3]);
        let received = recipients(&sink);
        assert_eq!(
            received,
            [
                "ana+0@example.com",
                "ana+2@example.com",
                "ana+3@example.com"
            ]
        );
        assert_eq!(sink.connections(), 2, "a new connection after the refusal");
    }
}

#[tokio::test]
async fn a_message_the_server_cannot_take_leaves_the_one_before_delivered() {
    // The capture server offers 8BITMIME but not SMTPUTF8.
    let sink = SmtpSink::start();
    let pool = pool(&sink, 1);
    let replies = send_all(&pool, &second_to("jörg@example.com", 3)).await;
    assert!(replies[0].is_ok(), "{:?}", replies[0]);
    match &replies[1] {
        Err(SendError::Permanent { detail, .. }) => {
            assert!(detail.contains("SMTPUTF8"), "{detail}")
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    assert!(replies[2].is_ok(), "{:?}", replies[2]);
    let received = recipients(&sink);
    assert_eq!(received, ["ana+0@example.com", "ana+2@example.com"]);
}

#[tokio::test]
async fn a_server_too_slow_to_answer_gets_no_message_twice() {
    let sink = SmtpSink::start();
    // Each message's content is answered after 1.5 s; the pool waits 1 s
    // (four times its timeout) for a reply.
    sink.slow_down(Duration::from_millis(1500));
    let pool = pool_waiting(&sink, 1, Duration::from_millis(250));
    let replies = send_all(&pool, &batch(3, |i| format!("ana+{i}@example.com"))).await;
    for reply in &replies {
        match reply {
            Err(SendError::Transient { detail, .. }) => {
                assert!(detail.contains("timed out"), "{detail}")
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
    }
    // The first content was written with the second message's commands:
    // the second message never sent its own, and is not sent again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let received = recipients(&sink);
    assert_eq!(received, ["ana+0@example.com", "ana+2@example.com"]);
}

#[tokio::test]
async fn sends_command_by_command_to_a_server_without_pipelining() {
    let sink = SmtpSink::start_without_pipelining();
    let pool = pool(&sink, 1);
    for n in 0..5 {
        send(&pool, "ana@example.com", n).await.unwrap();
    }
    assert_eq!(sink.received().len(), 5);
    assert_eq!(sink.pipelined(), 0);
    assert_eq!(sink.connections(), 1);
}

#[tokio::test]
async fn a_connection_the_server_closed_is_replaced_and_the_message_still_goes() {
    for sink in [SmtpSink::start(), SmtpSink::start_without_pipelining()] {
        let pool = pool(&sink, 1);
        send(&pool, "ana@example.com", 1).await.unwrap();
        sink.close_sessions();
        let reply = send(&pool, "ana@example.com", 2).await;
        assert!(reply.is_ok(), "{reply:?}");
        assert_eq!(sink.received().len(), 2);
        assert_eq!(sink.connections(), 2);
    }
}

#[tokio::test]
async fn refusals_are_classified_and_the_next_message_goes_through() {
    for sink in [SmtpSink::start(), SmtpSink::start_without_pipelining()] {
        sink.refuse("gone@example.com", 550, "5.1.1 no such user");
        sink.refuse("full@example.com", 451, "4.2.2 mailbox full, try later");
        let pool = pool(&sink, 1);
        match send(&pool, "gone@example.com", 1).await {
            Err(SendError::Permanent { code, detail }) => {
                assert_eq!(code, 550);
                assert!(detail.contains("5.1.1"), "{detail}");
            }
            other => panic!("expected a permanent refusal, got {other:?}"),
        }
        match send(&pool, "full@example.com", 2).await {
            Err(SendError::Transient { code, detail }) => {
                assert_eq!(code, Some(451));
                assert!(detail.contains("4.2.2"), "{detail}");
            }
            other => panic!("expected a transient refusal, got {other:?}"),
        }
        send(&pool, "ana@example.com", 3).await.unwrap();
        let received = sink.received();
        assert_eq!(received.len(), 1, "only the accepted message arrived");
        assert_eq!(received[0].to, vec!["ana@example.com"]);
    }
}

#[tokio::test]
async fn a_server_that_is_down_is_a_transient_failure() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let pool = SmtpPool::new(SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: Tls::None,
        credentials: None,
        pool_size: 1,
        timeout: Duration::from_secs(5),
        hello: "acme.example".into(),
    });
    match pool
        .send(
            &address("success@acme.example"),
            &address("ana@example.com"),
            &body(1),
        )
        .await
    {
        Err(SendError::Transient { detail, .. }) => {
            assert!(detail.contains("cannot connect"), "{detail}")
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
}
