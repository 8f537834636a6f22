//! The store contract: every test runs against SQLite and PostgreSQL, so the
//! two implementations cannot drift apart.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use tend::domain::customer::{CustomerId, CustomerRecord, Email};
use tend::domain::event::EventRecord;
use tend::store::{Db, Store, WriteOutcome};

/// Declares each contract test once per backend.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { let t = crate::common::TestStore::sqlite().await; super::$name(&t.store).await; })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { let t = crate::common::TestStore::postgres().await; super::$name(&t.store).await; })*
        }
    };
}

contract!(
    migrations_are_idempotent,
    customers_round_trip_every_field,
    upsert_inserts_then_replaces_and_keeps_created_at,
    a_repeated_id_in_one_batch_is_an_update_and_the_last_wins,
    batches_larger_than_one_statement,
    events_are_idempotent_by_id,
    an_event_without_its_customer_writes_nothing,
    zones_of_existing_customers_only,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).unwrap()
}

fn customer(id: &str) -> CustomerRecord {
    CustomerRecord {
        id: CustomerId::parse(id).unwrap(),
        email: Email::parse(&format!("{id}@example.com")).unwrap(),
        name: format!("Customer {id}"),
        timezone: chrono_tz::UTC,
        locale: "en".into(),
        plan: "pro".into(),
        signup_at: Some(t0() - Duration::days(3)),
        renewal_at: None,
        last_seen_at: None,
        health: None,
        attributes: Default::default(),
    }
}

fn event(customer: &str, id: Option<&str>, name: &str) -> EventRecord {
    EventRecord {
        id: id.map(str::to_owned),
        customer_id: CustomerId::parse(customer).unwrap(),
        name: name.into(),
        occurred_at: t0(),
        properties: Default::default(),
    }
}

async fn migrations_are_idempotent(store: &Db) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.count_customers().await.unwrap(), 0);
}

async fn customers_round_trip_every_field(store: &Db) {
    let mut c = customer("c-1");
    c.name = "Zoë O'Brien".into();
    c.timezone = chrono_tz::Asia::Kathmandu;
    c.locale = "pt-BR".into();
    c.renewal_at = Some(Utc.timestamp_millis_opt(1_800_000_000_123).unwrap());
    c.last_seen_at = Some(t0());
    c.health = Some(0);
    c.attributes =
        json!({"features": ["api", "dashboards"], "seats": 12, "nested": {"region": "eu"}})
            .as_object()
            .unwrap()
            .clone();
    store
        .upsert_customers(std::slice::from_ref(&c), t0())
        .await
        .unwrap();
    let stored = store.customer(&c.id).await.unwrap().expect("stored");
    assert_eq!(stored.record, c);
    assert_eq!(stored.created_at, t0());
    assert_eq!(stored.stage, None);
    assert!(
        store
            .customer(&CustomerId::parse("nobody").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

async fn upsert_inserts_then_replaces_and_keeps_created_at(store: &Db) {
    let first: Vec<_> = ["a", "b", "c"].map(customer).to_vec();
    let outcome = store.upsert_customers(&first, t0()).await.unwrap();
    assert_eq!(
        outcome,
        WriteOutcome {
            inserted: 3,
            existing: 0
        }
    );

    let mut changed = customer("b");
    changed.plan = "enterprise".into();
    changed.signup_at = None;
    let later = t0() + Duration::hours(1);
    let outcome = store
        .upsert_customers(&[changed.clone(), customer("d")], later)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        WriteOutcome {
            inserted: 1,
            existing: 1
        }
    );
    assert_eq!(store.count_customers().await.unwrap(), 4);

    let stored = store.customer(&changed.id).await.unwrap().unwrap();
    assert_eq!(stored.record, changed);
    assert_eq!(stored.created_at, t0());
    assert_eq!(stored.updated_at, later);
}

async fn a_repeated_id_in_one_batch_is_an_update_and_the_last_wins(store: &Db) {
    let mut second = customer("a");
    second.name = "Second".into();
    let outcome = store
        .upsert_customers(&[customer("a"), customer("b"), second], t0())
        .await
        .unwrap();
    assert_eq!(
        outcome,
        WriteOutcome {
            inserted: 2,
            existing: 1
        }
    );
    let stored = store
        .customer(&CustomerId::parse("a").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.record.name, "Second");
}

async fn batches_larger_than_one_statement(store: &Db) {
    let many: Vec<_> = (0..2500).map(|i| customer(&format!("c{i}"))).collect();
    let outcome = store.upsert_customers(&many, t0()).await.unwrap();
    assert_eq!(
        outcome,
        WriteOutcome {
            inserted: 2500,
            existing: 0
        }
    );
    let outcome = store.upsert_customers(&many, t0()).await.unwrap();
    assert_eq!(
        outcome,
        WriteOutcome {
            inserted: 0,
            existing: 2500
        }
    );
    assert_eq!(store.count_customers().await.unwrap(), 2500);
}

async fn events_are_idempotent_by_id(store: &Db) {
    store
        .upsert_customers(&[customer("a")], t0())
        .await
        .unwrap();
    let mut with_props = event("a", Some("evt-1"), "feature_used");
    with_props.properties = json!({"feature": "api"}).as_object().unwrap().clone();
    let batch = [
        with_props.clone(),
        event("a", None, "login"),
        event("a", Some("evt-1"), "other"),
    ];
    let outcome = store.insert_events(&batch, t0()).await.unwrap();
    assert_eq!(
        outcome,
        WriteOutcome {
            inserted: 2,
            existing: 1
        }
    );
    // Again: the keyed event is known, the unkeyed one is a new event.
    let outcome = store.insert_events(&batch[..2], t0()).await.unwrap();
    assert_eq!(
        outcome,
        WriteOutcome {
            inserted: 1,
            existing: 1
        }
    );

    let events = store
        .events_of(&CustomerId::parse("a").unwrap())
        .await
        .unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].record, with_props);
    assert_eq!(events[0].received_at, t0());
}

async fn an_event_without_its_customer_writes_nothing(store: &Db) {
    store
        .upsert_customers(&[customer("a")], t0())
        .await
        .unwrap();
    let batch = [
        event("a", Some("ok"), "login"),
        event("ghost", Some("bad"), "login"),
    ];
    assert!(store.insert_events(&batch, t0()).await.is_err());
    assert!(
        store
            .events_of(&CustomerId::parse("a").unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn zones_of_existing_customers_only(store: &Db) {
    let mut tokyo = customer("t");
    tokyo.timezone = chrono_tz::Asia::Tokyo;
    store
        .upsert_customers(&[tokyo, customer("u")], t0())
        .await
        .unwrap();
    let ids = ["t", "u", "missing"].map(|i| CustomerId::parse(i).unwrap());
    let zones = store.customer_zones(&ids).await.unwrap();
    assert_eq!(zones.len(), 2);
    assert_eq!(zones[&ids[0]], chrono_tz::Asia::Tokyo);
    assert_eq!(zones[&ids[1]], chrono_tz::UTC);
}
