//! The HTTP routes in-process: the router built from `http::AppState` with
//! a pinned clock and a real SQLite store, called without a socket. Beside
//! the black-box tests over real sockets (`daemon.rs`, `http_limits.rs`),
//! these show what a route does at a chosen instant.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, Duration, TimeZone, Utc};
use tower::Service;

use tend::clock::Clock;
use tend::config::{ConfigPath, Env};
use tend::domain::customer::{CustomerId, CustomerRecord, Email};
use tend::domain::message::{MessageId, NewMessage, Status};
use tend::domain::plan::OccurrenceKey;
use tend::domain::playbook::{Kind, Survey};
use tend::engine::Engine;
use tend::http::AppState;
use tend::store::{ConnectOptions, DatabaseUrl, Db, PlanWrite};
use tend::store::{Customers, Planning, Responses, Upkeep};
use tend::token::Purpose;

/// When the survey went out: years before the machine's clock, so a route
/// that read the system clock would find every link from it expired.
fn sent_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 3, 1, 9, 30, 0).unwrap()
}

/// A project in a temporary folder: config, empty playbooks and templates,
/// a migrated SQLite store holding one customer and one survey message.
struct Site {
    dir: tempfile::TempDir,
    store: Db,
    message: MessageId,
}

impl Site {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["playbooks", "templates", "data"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::write(
            root.join("tend.toml"),
            format!(
                "[database]\nurl = \"sqlite://{db}\"\n\n\
                 [paths]\nplaybooks = \"{root}/playbooks\"\ntemplates = \"{root}/templates\"\nstate = \"{root}/data\"\n\n\
                 [http]\npublic_url = \"https://tend.acme.example\"\nlink_lifetime = \"30d\"\n\n\
                 [security]\nsecret = \"a-signing-key-of-more-than-thirty-two-bytes\"\n",
                db = root.join("data/tend.db").display(),
                root = root.display(),
            ),
        )
        .unwrap();
        let url = DatabaseUrl::parse(&format!("sqlite://{}", root.join("data/tend.db").display()))
            .unwrap();
        let options = ConnectOptions {
            max_connections: 4,
            connect_timeout: std::time::Duration::from_secs(10),
            busy_timeout: std::time::Duration::from_secs(5),
        };
        let store = Db::connect(&url, &options).await.unwrap();
        store.migrate().await.unwrap();
        let message = survey_sent_to_ada(&store).await;
        Self {
            dir,
            store,
            message,
        }
    }

    /// The routes as the daemon serves them, with the clock at `now`.
    fn router(&self, now: DateTime<Utc>) -> (axum::Router, Engine) {
        let path = ConfigPath::Explicit(self.dir.path().join("tend.toml"));
        let env = Env::default();
        let build = || Engine::build(tend::config::load(&path, &env).unwrap(), "test").unwrap();
        let state = AppState::new(
            self.store.clone(),
            build(),
            None,
            "test".into(),
            Clock::Fixed(now),
        );
        (tend::http::router(Arc::new(state)), build())
    }
}

async fn survey_sent_to_ada(store: &Db) -> MessageId {
    let ada = CustomerRecord {
        id: CustomerId::parse("ada").unwrap(),
        email: Email::parse("ada@example.com").unwrap(),
        name: "Ada".into(),
        timezone: chrono_tz::UTC,
        locale: "en".into(),
        plan: "pro".into(),
        signup_at: Some(sent_at() - Duration::days(3)),
        renewal_at: None,
        last_seen_at: None,
        health: None,
        attributes: Default::default(),
        account_id: None,
        roles: Default::default(),
        availability: Default::default(),
    };
    store.upsert_customers(&[ada], sent_at()).await.unwrap();
    let id = MessageId::new();
    let survey = NewMessage {
        id,
        customer_id: CustomerId::parse("ada").unwrap(),
        key: OccurrenceKey {
            playbook: "onboarding".into(),
            step: "nps".into(),
            occurrence: "signup_at".into(),
        },
        kind: Kind::Checkin,
        category: "onboarding".into(),
        template: "onboarding/nps".into(),
        survey: Some(Survey::Nps),
        priority: 3,
        status: Status::Planned,
        reason: None,
        to: "ada@example.com".into(),
        message_id: format!("{id}@acme.example"),
        due_at: sent_at(),
        not_before: sent_at(),
        expires_at: sent_at() + Duration::days(7),
        urgent: false,
        notice: None,
        account_id: None,
    };
    let plan = PlanWrite {
        planned: vec![survey],
        ..PlanWrite::default()
    };
    store.record_plan(&plan, sent_at()).await.unwrap();
    id
}

/// POSTs the survey form `answer=9` to the link in the message.
async fn answer_nine(router: &mut axum::Router, token: &str) -> (StatusCode, String) {
    let mut request = Request::post(format!("/r/{token}/9"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("answer=9"))
        .unwrap();
    // What axum's server adds for each connection: the per-address limit
    // reads it.
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let response = router.call(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_survey_answer_is_recorded_at_the_routes_clock_and_refused_once_the_link_outlives_it() {
    let site = Site::new().await;
    let answered_at = sent_at() + Duration::days(2);

    // Within http.link_lifetime of the send: taken, and stamped with the
    // route's time, not the machine's.
    let (mut router, engine) = site.router(answered_at);
    let token = engine
        .signer
        .sign(Purpose::Survey, site.message, "nps", sent_at());
    let (status, page) = answer_nine(&mut router, &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("We recorded your answer"), "{page}");
    let recorded = site.store.responses(sent_at()).await.unwrap();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].value.as_deref(), Some("9"));
    assert_eq!(recorded[0].received_at, answered_at);

    // The same link once the lifetime has passed: expired, nothing new.
    let (mut router, _) = site.router(sent_at() + Duration::days(31));
    let (status, page) = answer_nine(&mut router, &token).await;
    assert_eq!(status, StatusCode::GONE, "{page}");
    assert!(page.contains("This link has expired"), "{page}");
    assert_eq!(site.store.responses(sent_at()).await.unwrap().len(), 1);
}
