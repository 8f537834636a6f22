//! tend's SMTP pool against a real SMTP server: pipelining when offered,
//! plain command by command when not, connections reused without a reset,
//! a connection the server closed replaced without losing or delaying the
//! message, and refusals classified and never leaving a session dirty.

mod common;

use std::time::Duration;

use common::smtp::SmtpSink;
use lettre::Address;
use tend::config::settings::Tls;
use tend::deliver::smtp::{SmtpPool, SmtpSettings};
use tend::deliver::transport::SendError;

fn pool(sink: &SmtpSink, size: u32) -> SmtpPool {
    SmtpPool::new(SmtpSettings {
        host: "127.0.0.1".into(),
        port: sink.port(),
        tls: Tls::None,
        credentials: None,
        pool_size: size,
        timeout: Duration::from_secs(10),
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
