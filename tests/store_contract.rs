//! The store contract: every test runs against SQLite and PostgreSQL, so the
//! two implementations cannot drift apart.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use tend::domain::account::{AccountId, AccountRecord, Roles};
use tend::domain::availability::Availability;
use tend::domain::catchup::{SUPERSEDED, Supersede};
use tend::domain::console::{Found, FoundCustomer};
use tend::domain::customer::{CustomerId, CustomerRecord, Email};
use tend::domain::event::EventRecord;
use tend::domain::feed::Position;
use tend::domain::inbound::Classification;
use tend::domain::message::{
    Attempt, AttemptOutcome, MessageFilter, MessageId, NewMessage, Outgoing, Settle, Status,
    Suppression,
};
use tend::domain::notification::{Channel, NewNotification, Outcome};
use tend::domain::plan::OccurrenceKey;
use tend::domain::playbook::{Kind, Survey};
use tend::domain::signal::Interest;
use tend::domain::suppression::{Lift, SuppressionFilter, SuppressionId};
use tend::store::{
    AccountNextCheck, AccountPlanWrite, AccountStageChange, Db, DueCursor, Effect, Erasure,
    InboundMail, InboundRecorded, InboundResponse, NewResponse, NextCheck, PlanWrite, Preferences,
    Recorded, Released, ResponseKind, Source, StageChange, Tidy, WriteOutcome,
};
use tend::store::{
    Accounts, Customers, Incidents, Outbox, Planning, Responses, Signals, Team, Upkeep,
};

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
    every_named_statement_prepares,
    a_prefilter_never_loses_a_customer_the_selector_matches,
    one_message_is_read_whatever_its_status,
    the_queue_of_some_customers_is_what_waits_with_its_suppressions,
    responses_are_kept_and_a_replacing_one_wins,
    an_unsubscribe_suppresses_only_that_category,
    preferences_lift_only_what_the_customer_chose,
    inbound_mail_is_matched_kept_once_and_suppresses,
    an_unsubscribe_by_mail_leaves_the_category_once,
    incidents_record_who_was_told_and_quiet_until_closed,
    a_maintenance_starts_and_closes_once_and_what_waits_never_goes,
    one_instance_leads_planning_at_a_time,
    a_mark_made_while_a_page_is_planned_is_not_lost,
    due_messages_are_counted_until_they_go,
    ids_are_ordered_byte_by_byte,
    claims_take_the_most_important_first,
    claims_pass_over_a_priority_another_instance_holds,
    claims_pass_over_priorities_with_nothing_due,
    claims_lease_each_message_to_one_instance,
    a_message_put_back_to_wait_is_free_to_claim,
    a_crash_mid_send_leaves_only_the_in_flight_unknown,
    a_restarted_instance_releases_its_claims_at_once,
    renewed_claims_outlast_their_first_lease,
    marking_renews_only_the_leases_that_end_soon,
    an_instance_name_is_held_by_one_live_instance,
    settling_records_attempts_and_suppressions,
    each_send_counts_once_however_often_its_customer_is_named,
    migrations_are_idempotent,
    tidying_keeps_everything,
    customers_round_trip_every_field,
    values_that_need_escaping_round_trip,
    upsert_inserts_then_replaces_and_keeps_created_at,
    a_repeated_id_in_one_batch_is_an_update_and_the_last_wins,
    batches_larger_than_one_statement,
    events_are_idempotent_by_id,
    an_event_without_its_customer_writes_nothing,
    zones_of_existing_customers_only,
    customers_page_in_id_order,
    planning_history_per_customer,
    stage_changes_move_the_customer_and_are_kept,
    replanning_never_duplicates_a_message,
    two_planners_racing_create_each_message_once,
    messages_are_listed_and_filtered,
    only_customers_whose_planning_time_has_come_are_read,
    a_new_fingerprint_has_everyone_planned_again,
    a_planning_page_is_recorded_whole,
    a_store_taking_writes_reports_no_failure_and_takes_a_probe,
    a_newer_occurrence_supersedes_what_still_waits,
    accounts_round_trip_and_keep_their_stage,
    a_contact_is_read_with_their_accounts_availability,
    console_sessions_passwords_and_the_audit,
    the_console_finds_people_and_accounts_by_name_address_and_id,
    the_consoles_answers_replies_and_detractors_read_back,
    a_contact_naming_an_unknown_account_creates_it,
    an_account_lists_its_contacts_with_their_roles,
    a_changed_account_has_its_contacts_planned_again,
    accounts_are_planned_once_per_occurrence_and_contact,
    the_report_rolls_up_by_account_owner_plan_and_stage,
    signals_are_recorded_when_listened_for_and_routed_once,
    a_targets_queue_goes_in_order_and_to_one_claimant,
    a_dead_instances_claims_retry_webhooks_and_leave_mail_unknown,
    settled_notifications_and_routed_signals_are_pruned,
    pages_of_messages_neither_skip_nor_repeat_while_more_are_planned,
    pages_of_responses_neither_skip_nor_repeat_a_replaced_answer,
    of_two_answers_at_once_one_is_kept,
    an_answer_to_an_erased_persons_mail_is_not_kept,
    an_erasure_and_a_claim_at_once_never_both_go_ahead,
    a_page_shows_what_committed_before_it_while_a_neighbour_writes,
    suppressions_are_listed_and_lifted_with_who_and_why,
);

/// Customers `a` and `b`, each with a welcome message due an hour after
/// `t0`.
async fn welcome_a_and_b(store: &Db) {
    store
        .upsert_customers(&[customer("a"), customer("b")], t0())
        .await
        .unwrap();
    plan_messages(
        store,
        &[
            message("a", "welcome", "signup_at"),
            message("b", "welcome", "signup_at"),
        ],
        t0(),
    )
    .await
    .unwrap();
}

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
        account_id: None,
        roles: Default::default(),
        availability: Default::default(),
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
    c.availability = Availability {
        holidays: Some("np".into()),
        quiet_until: Some(Utc.timestamp_millis_opt(1_800_000_000_789).unwrap()),
    };
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

/// Characters that need escaping somewhere (SQL, JSON, PostgreSQL's text
/// forms), in every kind of column, as a new customer and again as a
/// stored one.
async fn values_that_need_escaping_round_trip(store: &Db) {
    let awkward = "tab\there, line\nbreak\r\n, back\\slash, \\N, \\t, 'quote' \"dq\", ünï 日本";
    let mut c = customer("esc-1");
    c.name = awkward.into();
    c.locale = "de-DE".into();
    c.plan = "\\N".into();
    c.signup_at = Some(Utc.timestamp_millis_opt(1_700_000_000_123).unwrap());
    c.health = None;
    c.attributes = json!({"note": awkward, "list": [awkward, "\\N"], "n": 1.5})
        .as_object()
        .unwrap()
        .clone();
    let mut empty = customer("esc-2");
    empty.name = String::new();
    empty.plan = String::new();
    let outcome = store
        .upsert_customers(&[c.clone(), empty.clone()], t0())
        .await
        .unwrap();
    assert_eq!(
        outcome,
        WriteOutcome {
            inserted: 2,
            existing: 0
        }
    );
    for expected in [&c, &empty] {
        let stored = store.customer(&expected.id).await.unwrap().expect("stored");
        assert_eq!(&stored.record, expected);
        assert_eq!(stored.created_at, t0());
    }
    // Stored now: the same values written again, as an update.
    let later = t0() + Duration::hours(1);
    let outcome = store
        .upsert_customers(std::slice::from_ref(&c), later)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        WriteOutcome {
            inserted: 0,
            existing: 1
        }
    );
    let stored = store.customer(&c.id).await.unwrap().unwrap();
    assert_eq!(stored.record, c);
    assert_eq!(stored.created_at, t0());
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

fn id(s: &str) -> CustomerId {
    CustomerId::parse(s).unwrap()
}

fn message(customer: &str, step: &str, occurrence: &str) -> NewMessage {
    let uuid = MessageId::new();
    NewMessage {
        id: uuid,
        customer_id: id(customer),
        key: OccurrenceKey {
            playbook: "onboarding".into(),
            step: step.into(),
            occurrence: occurrence.into(),
        },
        kind: Kind::Checkin,
        category: "onboarding".into(),
        template: "onboarding/welcome".into(),
        survey: Some(Survey::Ces),
        priority: 3,
        status: Status::Planned,
        reason: None,
        to: format!("{customer}@example.com"),
        message_id: format!("{uuid}@acme.example"),
        due_at: t0(),
        not_before: t0() + Duration::hours(1),
        expires_at: t0() + Duration::days(7),
        urgent: false,
        notice: None,
        account_id: None,
    }
}

async fn customers_page_in_id_order(store: &Db) {
    let all: Vec<_> = ["c", "a", "e", "b", "d"].map(customer).to_vec();
    store.upsert_customers(&all, t0()).await.unwrap();
    let first = store.customers_page(None, 2, None).await.unwrap();
    let ids: Vec<&str> = first.iter().map(|c| c.record.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    let rest = store
        .customers_page(Some(&first[1].record.id), 10, None)
        .await
        .unwrap();
    let ids: Vec<&str> = rest.iter().map(|c| c.record.id.as_str()).collect();
    assert_eq!(ids, ["c", "d", "e"]);
    assert_eq!(rest[0].record, customer("c"));
}

async fn planning_history_per_customer(store: &Db) {
    store
        .upsert_customers(&[customer("a"), customer("b")], t0())
        .await
        .unwrap();
    store
        .insert_events(
            &[
                event("a", Some("evt-1"), "login"),
                event("a", None, "login"),
            ],
            t0(),
        )
        .await
        .unwrap();
    record_stages(
        store,
        &[StageChange {
            customer_id: id("a"),
            from: None,
            to: Some("onboarding".into()),
            at: t0(),
        }],
    )
    .await
    .unwrap();
    plan_messages(store, &[message("a", "welcome", "signup_at")], t0())
        .await
        .unwrap();

    let history = store
        .planning_history(&[id("a"), id("b"), id("ghost")])
        .await
        .unwrap();
    assert_eq!(history.len(), 3);
    let a = &history[&id("a")];
    let mut keys: Vec<&str> = a.events.iter().map(|e| e.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], "evt-1");
    assert!(keys[1].starts_with("seq:"), "{keys:?}");
    assert_eq!(a.stage_entries.len(), 1);
    assert_eq!(
        (
            a.stage_entries[0].stage.as_str(),
            a.stage_entries[0].entered_at
        ),
        ("onboarding", t0())
    );
    assert_eq!(a.planned.len(), 1);
    assert!(a.sent.is_empty(), "planned is not sent");
    assert_eq!(a.waiting, a.planned, "planned still waits");
    let b = &history[&id("b")];
    assert!(b.events.is_empty() && b.planned.is_empty());
}

async fn stage_changes_move_the_customer_and_are_kept(store: &Db) {
    store
        .upsert_customers(&[customer("a")], t0())
        .await
        .unwrap();
    let later = t0() + Duration::days(40);
    record_stages(
        store,
        &[
            StageChange {
                customer_id: id("a"),
                from: None,
                to: Some("onboarding".into()),
                at: t0(),
            },
            StageChange {
                customer_id: id("a"),
                from: Some("onboarding".into()),
                to: Some("adopting".into()),
                at: later,
            },
        ],
    )
    .await
    .unwrap();
    let stored = store.customer(&id("a")).await.unwrap().unwrap();
    assert_eq!(
        (stored.stage.as_deref(), stored.stage_entered_at),
        (Some("adopting"), Some(later))
    );
    // A re-import keeps the stage tend derived.
    store
        .upsert_customers(&[customer("a")], later)
        .await
        .unwrap();
    assert_eq!(
        store
            .customer(&id("a"))
            .await
            .unwrap()
            .unwrap()
            .stage
            .as_deref(),
        Some("adopting")
    );
    let history = store.planning_history(&[id("a")]).await.unwrap();
    assert_eq!(history[&id("a")].stage_entries.len(), 2);
}

async fn replanning_never_duplicates_a_message(store: &Db) {
    store
        .upsert_customers(&[customer("a"), customer("b")], t0())
        .await
        .unwrap();
    let mut total = 0;
    for _ in 0..5 {
        // New ids each time, as a restarted planner would make.
        let batch = [
            message("a", "welcome", "signup_at"),
            message("b", "welcome", "signup_at"),
            message("a", "tip", "signup_at"),
        ];
        total += plan_messages(store, &batch, t0()).await.unwrap();
    }
    assert_eq!(total, 3);
    assert_eq!(
        store
            .messages(&MessageFilter::default())
            .await
            .unwrap()
            .len(),
        3
    );
}

async fn two_planners_racing_create_each_message_once(store: &Db) {
    let customers: Vec<_> = (0..200).map(|i| customer(&format!("c{i:03}"))).collect();
    store.upsert_customers(&customers, t0()).await.unwrap();
    let batch = |_: u8| -> Vec<NewMessage> {
        (0..200)
            .map(|i| message(&format!("c{i:03}"), "welcome", "signup_at"))
            .collect()
    };
    let (first, second) = (batch(1), batch(2));
    let (a, b) = tokio::join!(
        plan_messages(store, &first, t0()),
        plan_messages(store, &second, t0())
    );
    assert_eq!(a.unwrap() + b.unwrap(), 200);
    assert_eq!(
        store
            .messages(&MessageFilter::default())
            .await
            .unwrap()
            .len(),
        200
    );
}

async fn messages_are_listed_and_filtered(store: &Db) {
    store
        .upsert_customers(&[customer("a"), customer("b")], t0())
        .await
        .unwrap();
    let mut expired = message("b", "welcome", "signup_at");
    expired.status = Status::Expired;
    expired.reason = Some("the send window does not open within 7d".into());
    let planned = message("a", "welcome", "signup_at");
    plan_messages(store, &[planned.clone(), expired], t0())
        .await
        .unwrap();

    let all = store.messages(&MessageFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    let a = all.iter().find(|m| m.customer_id == "a").unwrap();
    assert_eq!(a.id, planned.id.to_string());
    assert_eq!(
        (a.playbook.as_str(), a.step.as_str(), a.occurrence.as_str()),
        ("onboarding", "welcome", "signup_at")
    );
    assert_eq!((a.kind.as_str(), a.status.as_str()), ("checkin", "planned"));
    assert_eq!(a.to.as_deref(), Some("a@example.com"));
    assert_eq!(a.message_id.as_deref(), Some(planned.message_id.as_str()));
    assert_eq!((a.due_at, a.sent_at, a.attempts), (t0(), None, 0));

    let only = store
        .messages(&MessageFilter {
            since: None,
            status: Some(Status::Expired),
            customer: None,
        })
        .await
        .unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(
        only[0].reason.as_deref(),
        Some("the send window does not open within 7d")
    );
    let mine = store
        .messages(&MessageFilter {
            since: None,
            status: None,
            customer: Some(id("a")),
        })
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
}

async fn only_customers_whose_planning_time_has_come_are_read(store: &Db) {
    store
        .upsert_customers(&[customer("a"), customer("b"), customer("c")], t0())
        .await
        .unwrap();
    // New customers are due at once.
    assert_eq!(due_ids(store, t0(), 10).await.len(), 3);
    let tomorrow = t0() + Duration::days(1);
    set_next(
        store,
        &[
            (id("a"), tomorrow),
            (id("b"), tomorrow + Duration::hours(1)),
            (id("c"), tomorrow),
        ],
    )
    .await
    .unwrap();
    assert!(
        due_ids(store, t0(), 10).await.is_empty(),
        "nothing due: nobody read"
    );
    assert_eq!(due_ids(store, tomorrow, 10).await, ["a", "c"]);
    // A page at a time, each after the last.
    let (first, cursor) = store
        .customers_due(tomorrow, &DueCursor::start(), 1)
        .await
        .unwrap();
    assert_eq!(first[0].0.record.id.as_str(), "a");
    assert_eq!(
        cursor,
        DueCursor {
            plan_at: tomorrow,
            id: "a".into()
        }
    );
    let (second, cursor) = store.customers_due(tomorrow, &cursor, 1).await.unwrap();
    assert_eq!(second[0].0.record.id.as_str(), "c");
    let (rest, end) = store.customers_due(tomorrow, &cursor, 1).await.unwrap();
    assert!(rest.is_empty());
    assert_eq!(end, cursor, "an empty page keeps the cursor");

    // A changed customer, or one with a new event, is due again at once.
    store
        .upsert_customers(&[customer("a")], t0())
        .await
        .unwrap();
    store
        .insert_events(&[event("b", None, "login")], t0())
        .await
        .unwrap();
    assert_eq!(due_ids(store, t0(), 10).await, ["a", "b"]);
}

async fn a_new_fingerprint_has_everyone_planned_again(store: &Db) {
    store
        .upsert_customers(&[customer("a"), customer("b")], t0())
        .await
        .unwrap();
    let later = t0() + Duration::days(1);
    set_next(store, &[(id("a"), later), (id("b"), later)])
        .await
        .unwrap();
    assert_eq!(store.planner_fingerprint().await.unwrap(), None);
    store.replan_all("v1").await.unwrap();
    assert_eq!(
        store.planner_fingerprint().await.unwrap().as_deref(),
        Some("v1")
    );
    assert_eq!(due_ids(store, t0(), 10).await.len(), 2);
    store.replan_all("v2").await.unwrap();
    assert_eq!(
        store.planner_fingerprint().await.unwrap().as_deref(),
        Some("v2")
    );
}

async fn due_ids(store: &Db, now: DateTime<Utc>, limit: u32) -> Vec<String> {
    let (due, _) = store
        .customers_due(now, &DueCursor::start(), limit)
        .await
        .unwrap();
    due.iter().map(|(c, _)| c.record.id.to_string()).collect()
}

async fn a_planning_page_is_recorded_whole(store: &Db) {
    store
        .upsert_customers(&[customer("a"), customer("b")], t0())
        .await
        .unwrap();
    let mut expired = message("b", "welcome", "signup_at");
    expired.status = Status::Expired;
    let later = t0() + Duration::days(1);
    let plan = PlanWrite {
        changes: vec![StageChange {
            customer_id: id("a"),
            from: None,
            to: Some("onboarding".into()),
            at: t0(),
        }],
        planned: vec![message("a", "welcome", "signup_at")],
        expired: vec![expired],
        superseding: Vec::new(),
        next: vec![
            next_check(store, "a", later).await,
            next_check(store, "b", later).await,
        ],
    };
    assert_eq!(
        store.record_plan(&plan, t0()).await.unwrap(),
        recorded(1, 1)
    );
    assert_eq!(
        store
            .customer(&id("a"))
            .await
            .unwrap()
            .unwrap()
            .stage
            .as_deref(),
        Some("onboarding")
    );
    assert_eq!(
        store
            .messages(&MessageFilter::default())
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(due_ids(store, t0(), 10).await.is_empty());
    assert_eq!(due_ids(store, later, 10).await, ["a", "b"]);
    // Recording the same page again adds no message.
    let again = PlanWrite {
        changes: Vec::new(),
        ..plan
    };
    assert_eq!(
        store.record_plan(&again, t0()).await.unwrap(),
        recorded(0, 0)
    );
}

// Planning writes only through `record_plan`; these put one part of a page.

async fn record_stages(store: &Db, changes: &[StageChange]) -> Result<(), tend::store::Error> {
    let plan = PlanWrite {
        changes: changes.to_vec(),
        ..PlanWrite::default()
    };
    store.record_plan(&plan, t0()).await.map(|_| ())
}

/// Puts messages into the outbox; returns how many were new.
async fn plan_messages(
    store: &Db,
    messages: &[NewMessage],
    now: DateTime<Utc>,
) -> Result<u64, tend::store::Error> {
    let (planned, expired): (Vec<_>, Vec<_>) = messages
        .iter()
        .cloned()
        .partition(|m| m.status == Status::Planned);
    let plan = PlanWrite {
        planned,
        expired,
        ..PlanWrite::default()
    };
    store
        .record_plan(&plan, now)
        .await
        .map(|r| r.planned + r.expired)
}

async fn set_next(
    store: &Db,
    next: &[(CustomerId, DateTime<Utc>)],
) -> Result<(), tend::store::Error> {
    let mut checks = Vec::new();
    for (id, at) in next {
        checks.push(next_check(store, id.as_str(), *at).await);
    }
    let plan = PlanWrite {
        next: checks,
        ..PlanWrite::default()
    };
    store.record_plan(&plan, t0()).await.map(|_| ())
}

/// A next check for `customer` at `at`, guarded by its `plan_at` now.
async fn next_check(store: &Db, customer: &str, at: DateTime<Utc>) -> NextCheck {
    let far = t0() + Duration::days(100_000);
    let (all, _) = store
        .customers_due(far, &DueCursor::start(), 10_000)
        .await
        .unwrap();
    let seen = all
        .iter()
        .find(|(c, _)| c.record.id.as_str() == customer)
        .map(|(_, seen)| *seen)
        .unwrap_or_else(|| panic!("no customer {customer}"));
    NextCheck {
        id: id(customer),
        at,
        seen,
    }
}

/// A plan that only moves each customer of `page` on to `at`.
fn next_checks_at(
    page: &[(tend::domain::customer::Customer, DateTime<Utc>)],
    at: DateTime<Utc>,
) -> PlanWrite {
    PlanWrite {
        next: page
            .iter()
            .map(|(c, seen)| NextCheck {
                id: c.record.id.clone(),
                at,
                seen: *seen,
            })
            .collect(),
        ..PlanWrite::default()
    }
}

async fn a_mark_made_while_a_page_is_planned_is_not_lost(store: &Db) {
    store
        .upsert_customers(&[customer("a"), customer("b")], t0())
        .await
        .unwrap();
    let later = t0() + Duration::days(30);
    // A pass reads both customers…
    let (page, _) = store
        .customers_due(t0(), &DueCursor::start(), 10)
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    // …then an event arrives for one and a re-import for the other, twice…
    for _ in 0..2 {
        store
            .insert_events(&[event("a", None, "login")], t0())
            .await
            .unwrap();
        store
            .upsert_customers(&[customer("b")], t0())
            .await
            .unwrap();
    }
    // …and the pass writes what it planned without them, a stage change
    // for one among it.
    let stale = PlanWrite {
        changes: vec![StageChange {
            customer_id: id("a"),
            from: None,
            to: Some("onboarding".into()),
            at: t0(),
        }],
        ..next_checks_at(&page, later)
    };
    store.record_plan(&stale, t0()).await.unwrap();
    assert_eq!(
        due_ids(store, t0(), 10).await,
        ["a", "b"],
        "both stay due for the next pass"
    );
    let a = store.customer(&id("a")).await.unwrap().unwrap();
    assert_eq!(
        (a.stage.as_deref(), a.stage_entered_at),
        (Some("onboarding"), Some(t0())),
        "the stage moves all the same"
    );
    let b = store.customer(&id("b")).await.unwrap().unwrap();
    assert_eq!(b.stage, None, "no one else's stage moves");
    // A pass that read them after the marks moves them on.
    let (page, _) = store
        .customers_due(t0(), &DueCursor::start(), 10)
        .await
        .unwrap();
    store
        .record_plan(&next_checks_at(&page, later), t0())
        .await
        .unwrap();
    assert!(due_ids(store, t0(), 10).await.is_empty());
    assert_eq!(due_ids(store, later, 10).await, ["a", "b"]);
}

async fn responses_are_kept_and_a_replacing_one_wins(store: &Db) {
    store
        .upsert_customers(&[customer("a")], t0())
        .await
        .unwrap();
    plan_messages(store, &[message("a", "welcome", "signup_at")], t0())
        .await
        .unwrap();
    let views = store.messages(&MessageFilter::default()).await.unwrap();
    let m = views[0].id.parse::<MessageId>().unwrap();
    let answer = |value: &str, replace| NewResponse {
        kind: ResponseKind::Survey,
        value: Some(value.into()),
        comment: None,
        source: Source::SurveyPage,
        replace,
    };
    for value in ["3", "9"] {
        let who = store.record_response(m, &answer(value, true), t0()).await;
        assert_eq!(who.unwrap(), Some(id("a")));
    }
    let unknown = store
        .record_response(MessageId::new(), &answer("1", true), t0())
        .await
        .unwrap();
    assert_eq!(unknown, None, "a response to no message records nothing");
    let click = click("https://docs.acme.example");
    store.record_response(m, &click, t0()).await.unwrap();
    store.record_response(m, &click, t0()).await.unwrap();
    let kept = store.responses_of(m).await.unwrap();
    let survey: Vec<_> = kept.iter().filter(|r| r.0 == "survey").collect();
    assert_eq!(survey.len(), 1, "the last answer replaced the first");
    assert_eq!(survey[0].1.as_deref(), Some("9"));
    assert_eq!(
        kept.iter().filter(|r| r.0 == "click").count(),
        2,
        "every click counts"
    );
}

/// A one-click unsubscribe from `category`.
fn unsubscribe(category: &str) -> Preferences {
    Preferences {
        unsubscribe: vec![category.into()],
        resubscribe: Vec::new(),
        source: Source::OneClick,
    }
}

/// Customers whose attributes take every shape a selector may meet: a
/// list, a map, a string, a number, nothing; and a missing health.
fn varied_customers() -> Vec<CustomerRecord> {
    let shapes = [
        json!({"region": "eu", "features": ["api", "sso"]}),
        json!({"region": "us", "features": ["api"]}),
        json!({"region": "eu", "features": {"api": true}}),
        json!({"region": "eu", "features": "api"}),
        json!({"region": 5, "features": []}),
        json!({"region": "EU", "features": ["API"]}),
        json!({"features": ["dashboards"], "seats": 4}),
        json!({}),
    ];
    let plans = ["pro", "free", "enterprise", ""];
    (0..32)
        .map(|i| {
            let mut c = customer(&format!("v{i:02}"));
            c.attributes = shapes[i % shapes.len()].as_object().unwrap().clone();
            c.plan = plans[i % plans.len()].into();
            c.health = (i % 5 != 0).then_some((i * 7 % 101) as u8);
            c
        })
        .collect()
}

async fn a_prefilter_never_loses_a_customer_the_selector_matches(store: &Db) {
    use tend::domain::condition::{Condition, Facts};
    store
        .upsert_customers(&varied_customers(), t0())
        .await
        .unwrap();
    let everyone = store.customers_page(None, 1000, None).await.unwrap();
    assert_eq!(everyone.len(), 32);
    let sent = Default::default();
    let matches = |condition: &Condition, customers: &[tend::domain::customer::Customer]| {
        customers
            .iter()
            .filter(|c| {
                let facts = Facts {
                    customer: c,
                    account: None,
                    now: t0(),
                    events: &[],
                    sent: &sent,
                };
                condition.holds(&facts).unwrap_or(false)
            })
            .map(|c| c.record.id.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    for source in [
        "customer.health == 14",
        "customer.health < 40",
        "customer.health >= 50 && customer.health <= 80",
        r#"customer.plan == "free""#,
        r#"customer.plan == """#,
        // By address: no index, the store reads the table.
        r#"customer.email == "v07@example.com""#,
        r#"customer.plan in ["pro", "enterprise"]"#,
        r#"customer.attributes.region == "eu""#,
        r#""api" in customer.attributes.features"#,
        r#"customer.attributes.region == "eu" && "api" in customer.attributes.features && customer.plan == "pro""#,
        r#"customer.plan == "free" || "sso" in customer.attributes.features"#,
        r#"customer.attributes.region == "eu" && customer.health > 20"#,
    ] {
        let condition = Condition::compile(source).unwrap();
        let filter = condition
            .prefilter()
            .unwrap_or_else(|| panic!("{source} has a prefilter"));
        // Page through in small pages, as an incident does.
        let mut passing = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .customers_page(after.as_ref(), 3, Some(&filter))
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.record.id.clone());
            passing.extend(page);
        }
        let expected = matches(&condition, &everyone);
        assert!(!expected.is_empty(), "{source} matches someone");
        assert_eq!(matches(&condition, &passing), expected, "{source}");
        assert!(
            passing.len() < everyone.len(),
            "{source}: the prefilter rules someone out"
        );
    }
}

async fn one_message_is_read_whatever_its_status(store: &Db) {
    let [(to_a, message_id), _] = welcomes_to_a_and_b(store).await;
    let found = store.outgoing(to_a).await.unwrap().unwrap();
    assert_eq!(found.id, to_a);
    assert_eq!(found.customer.record.id, id("a"));
    assert_eq!(found.template, "onboarding/welcome");
    assert_eq!(found.message_id, message_id);
    assert_eq!(found.survey, Some(Survey::Ces));
    assert_eq!(found.suppressed, None);
    // Suppressed since: still found, and says so.
    store
        .set_preferences(to_a, &unsubscribe("onboarding"), t0())
        .await
        .unwrap();
    let found = store.outgoing(to_a).await.unwrap().unwrap();
    assert!(found.suppressed.is_some());
    assert_eq!(store.outgoing(MessageId::new()).await.unwrap(), None);
}

async fn the_queue_of_some_customers_is_what_waits_with_its_suppressions(store: &Db) {
    store
        .upsert_customers(&[customer("a"), customer("b"), customer("c")], t0())
        .await
        .unwrap();
    let mut tip = message("a", "tip", "signup_at");
    tip.category = "tips".into();
    tip.not_before = t0() + Duration::hours(3);
    let mut gone = message("a", "old", "signup_at");
    gone.status = Status::Expired;
    plan_messages(
        store,
        &[
            tip,
            message("a", "welcome", "signup_at"),
            gone,
            message("b", "welcome", "signup_at"),
            message("c", "welcome", "signup_at"),
        ],
        t0(),
    )
    .await
    .unwrap();
    let to_b = store
        .messages(&MessageFilter::default())
        .await
        .unwrap()
        .into_iter()
        .find(|v| v.customer_id == "b")
        .unwrap();
    store
        .set_preferences(
            to_b.id.parse::<MessageId>().unwrap(),
            &unsubscribe("onboarding"),
            t0(),
        )
        .await
        .unwrap();

    let queued = store.queued(&[id("a"), id("b")]).await.unwrap();
    let shown: Vec<(&str, &str, bool)> = queued
        .iter()
        .map(|m| {
            (
                m.customer.record.id.as_str(),
                m.key.step.as_str(),
                m.suppressed.is_some(),
            )
        })
        .collect();
    // Each customer's waiting messages in due order; the expired one and
    // customer c's are not there; b's says why it will not go.
    assert_eq!(
        shown,
        vec![
            ("a", "welcome", false),
            ("a", "tip", false),
            ("b", "welcome", true)
        ]
    );
    assert_eq!(queued[1].category, "tips");
    assert_eq!(queued[1].not_before, t0() + Duration::hours(3));
    assert!(store.queued(&[]).await.unwrap().is_empty());
}

async fn an_unsubscribe_suppresses_only_that_category(store: &Db) {
    store
        .upsert_customers(&[customer("a")], t0())
        .await
        .unwrap();
    let mut tip = message("a", "tip", "signup_at");
    tip.category = "tips".into();
    plan_messages(store, &[message("a", "welcome", "signup_at"), tip], t0())
        .await
        .unwrap();
    let now = t0() + Duration::hours(2);
    let views = store.messages(&MessageFilter::default()).await.unwrap();
    let first = views[0].id.parse::<MessageId>().unwrap();
    let who = store
        .set_preferences(first, &unsubscribe("onboarding"), now)
        .await
        .unwrap();
    assert_eq!(who, Some(id("a")));
    let kept = store.responses_of(first).await.unwrap();
    assert_eq!(
        kept,
        vec![(
            "unsubscribe".to_owned(),
            Some("onboarding".to_owned()),
            None
        )]
    );
    let left = store.suppressions_of(&id("a")).await.unwrap();
    assert_eq!(
        left.iter().map(|s| s.category.as_str()).collect::<Vec<_>>(),
        ["onboarding"]
    );
    assert!(store.suppressions_of(&id("b")).await.unwrap().is_empty());
    // Twice (a client retrying) is harmless, and records no second response.
    store
        .set_preferences(first, &unsubscribe("onboarding"), now)
        .await
        .unwrap();
    assert_eq!(store.responses_of(first).await.unwrap().len(), 1);
    assert_eq!(
        store
            .set_preferences(MessageId::new(), &unsubscribe("onboarding"), now)
            .await
            .unwrap(),
        None,
        "an unknown message records nothing"
    );
    let claimed = store
        .claim("w", now, now + Duration::minutes(10), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    for m in &claimed {
        let suppressed = m.suppressed.as_deref();
        if m.category == "onboarding" {
            assert_eq!(
                suppressed,
                Some("the customer unsubscribed from onboarding (one-click)")
            );
        } else {
            assert_eq!(suppressed, None, "{}", m.category);
        }
    }
}

async fn one_instance_leads_planning_at_a_time(store: &Db) {
    let first = store.lead_planning().await.unwrap();
    assert!(first.is_some());
    let second = store.lead_planning().await.unwrap();
    match store.backend() {
        // One daemon per file: it always leads.
        "sqlite" => assert!(second.is_some()),
        _ => assert!(second.is_none(), "a second instance waits its turn"),
    }
    drop(second);
    // Given up at the end of a pass, the lead is free at once…
    first.unwrap().release().await;
    let again = store.lead_planning().await.unwrap();
    assert!(again.is_some());
    // …and when a pass is abandoned, once the server has seen its
    // connection close.
    drop(again);
    let started = std::time::Instant::now();
    loop {
        if store.lead_planning().await.unwrap().is_some() {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn due_messages_are_counted_until_they_go(store: &Db) {
    store.ping().await.unwrap();
    let customers: Vec<_> = (0..5).map(|i| customer(&format!("d{i}"))).collect();
    store.upsert_customers(&customers, t0()).await.unwrap();
    let batch: Vec<_> = (0..5)
        .map(|i| message(&format!("d{i}"), "welcome", "signup_at"))
        .collect();
    plan_messages(store, &batch, t0()).await.unwrap();
    // not_before is t0 + 1h.
    assert_eq!(store.count_due(t0()).await.unwrap(), 0);
    let now = t0() + Duration::hours(2);
    assert_eq!(store.count_due(now).await.unwrap(), 5);
    let claimed = store
        .claim("a", now, now + Duration::minutes(10), 2)
        .await
        .unwrap();
    let ids: Vec<_> = claimed.iter().map(|m| m.id).collect();
    store
        .begin_sending(
            "a",
            &ids,
            now,
            now + Duration::minutes(10),
            now + Duration::minutes(10),
        )
        .await
        .unwrap();
    assert_eq!(store.count_due(now).await.unwrap(), 3, "sending is not due");
}

async fn claims_lease_each_message_to_one_instance(store: &Db) {
    let customers: Vec<_> = (0..30).map(|i| customer(&format!("c{i:02}"))).collect();
    store.upsert_customers(&customers, t0()).await.unwrap();
    let batch: Vec<_> = (0..30)
        .map(|i| message(&format!("c{i:02}"), "welcome", "signup_at"))
        .collect();
    plan_messages(store, &batch, t0()).await.unwrap();
    // Not before its time (not_before is t0 + 1h).
    let early = store
        .claim("a", t0(), t0() + Duration::minutes(10), 100)
        .await
        .unwrap();
    assert!(early.is_empty());
    let now = t0() + Duration::hours(2);
    let lease = now + Duration::minutes(10);
    let (a, b) = tokio::join!(
        store.claim("a", now, lease, 20),
        store.claim("b", now, lease, 20)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 30, "every message claimed once");
    let mut ids: Vec<_> = a.iter().chain(&b).map(|m| m.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30, "no message claimed twice");
    let one = &a[0];
    assert_eq!(one.customer.record.email.as_str(), one.to);
    assert_eq!(one.survey, Some(Survey::Ces));
    assert_eq!(one.status, Status::Planned);
    assert!(one.suppressed.is_none());
    // Leased rows are not claimed again until the lease runs out.
    assert!(store.claim("c", now, lease, 100).await.unwrap().is_empty());
    let later = lease + Duration::seconds(1);
    let taken = store
        .claim("c", later, later + Duration::minutes(10), 100)
        .await
        .unwrap();
    assert_eq!(taken.len(), 30);
    // The first owner, late, can no longer mark them sending: the new
    // owner can, and its lease is renewed.
    let first: Vec<_> = a.iter().map(|m| m.id).collect();
    let late = store.begin_sending(
        "a",
        &first,
        later,
        later + Duration::minutes(10),
        later + Duration::minutes(10),
    );
    assert!(late.await.unwrap().is_empty(), "not sent by a lapsed owner");
    // Nor can it record anything about them (here: put one back to wait).
    store
        .settle("a", &[Settle::hold(&a[0], later, "late".into())], later)
        .await
        .unwrap();
    let mine = store
        .begin_sending(
            "c",
            &first,
            later,
            later + Duration::hours(1),
            later + Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(mine.len(), first.len());
    let past_claim_lease = later + Duration::minutes(30);
    assert_eq!(
        store
            .recover_sending(past_claim_lease, false)
            .await
            .unwrap(),
        0,
        "marking renewed the lease"
    );
}

async fn a_message_put_back_to_wait_is_free_to_claim(store: &Db) {
    welcome_a_and_b(store).await;
    let now = t0() + Duration::hours(2);
    let lease = now + Duration::minutes(10);
    let claimed = store.claim("w", now, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    // One waits (say, for the cap), due again at once: its claim ends with
    // it, long before the lease would have run out.
    let held = claimed
        .iter()
        .find(|m| m.customer.record.id.as_str() == "a")
        .unwrap();
    store
        .settle("w", &[Settle::hold(held, now, "capped".into())], now)
        .await
        .unwrap();
    let again = store.claim("v", now, lease, 10).await.unwrap();
    assert_eq!(again.len(), 1, "only the one put back");
    assert_eq!(again[0].id, held.id);
    // The first claimer no longer holds it: it can neither send it…
    assert!(
        store
            .begin_sending("w", &[held.id], now, lease, lease)
            .await
            .unwrap()
            .is_empty()
    );
    // …nor record anything about it.
    store
        .settle(
            "w",
            &[Settle::end(held, Status::Failed, "late".into())],
            now,
        )
        .await
        .unwrap();
    let a = store
        .messages(&MessageFilter::default())
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.customer_id == "a")
        .unwrap();
    assert_eq!(a.status, "planned");
    assert_eq!(a.reason.as_deref(), Some("capped"));
    // The new claimer sends it; the other message is still the first's.
    assert_eq!(
        store
            .begin_sending("v", &[held.id], now, lease, lease)
            .await
            .unwrap(),
        [held.id]
    );
    let other = claimed
        .iter()
        .find(|m| m.customer.record.id.as_str() == "b")
        .unwrap();
    assert!(
        store
            .begin_sending("v", &[other.id], now, lease, lease)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .begin_sending("w", &[other.id], now, lease, lease)
            .await
            .unwrap(),
        [other.id]
    );
}

async fn a_crash_mid_send_leaves_only_the_in_flight_unknown(store: &Db) {
    welcome_a_and_b(store).await;
    let now = t0() + Duration::hours(2);
    let lease = now + Duration::minutes(10);
    let claimed = store.claim("dead", now, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    // Only the first one's SMTP transaction had started when the instance died.
    let in_flight = claimed
        .iter()
        .find(|m| m.customer.record.id.as_str() == "a")
        .unwrap()
        .id;
    store
        .begin_sending("dead", &[in_flight], now, lease, lease)
        .await
        .unwrap();
    assert_eq!(
        store.recover_sending(now, false).await.unwrap(),
        0,
        "the lease still holds"
    );
    let after = lease + Duration::seconds(1);
    assert_eq!(store.recover_sending(after, false).await.unwrap(), 1);
    let all = store.messages(&MessageFilter::default()).await.unwrap();
    let a = all.iter().find(|m| m.customer_id == "a").unwrap();
    assert_eq!(a.status, "unknown");
    assert!(a.reason.as_deref().unwrap().contains("not sent again"));
    // The instance was alive after all. Putting the message back to wait
    // is no longer its to do (that could send it twice)…
    let a_claimed = claimed.iter().find(|m| m.id == in_flight).unwrap();
    store
        .settle(
            "dead",
            &[Settle::hold(a_claimed, after, "late".into())],
            after,
        )
        .await
        .unwrap();
    let status_of_a = async || {
        let all = store.messages(&MessageFilter::default()).await.unwrap();
        all.into_iter()
            .find(|m| m.customer_id == "a")
            .unwrap()
            .status
    };
    assert_eq!(status_of_a().await, "unknown");
    // …but what its SMTP transaction ended in is the truth, and wins.
    let mut sent = Settle::end(a_claimed, Status::Sent, "accepted: 250 ok".into());
    sent.sent_at = Some(now);
    sent.attempt = Some(Attempt {
        started_at: now,
        finished_at: now,
        outcome: AttemptOutcome::Sent,
        smtp_code: Some(250),
        detail: "250 ok".into(),
    });
    store.settle("dead", &[sent], after).await.unwrap();
    assert_eq!(status_of_a().await, "sent");
    // The other was never handed to the server: simply claimed again.
    let again = store
        .claim("next", after, after + Duration::minutes(10), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].customer.record.id.as_str(), "b");

    // With resend_unknown, an interrupted send goes out again.
    store
        .begin_sending(
            "next",
            &[again[0].id],
            after,
            after + Duration::minutes(10),
            after + Duration::minutes(10),
        )
        .await
        .unwrap();
    let much_later = after + Duration::hours(1);
    assert_eq!(store.recover_sending(much_later, true).await.unwrap(), 1);
    let resent = store
        .claim("third", much_later, much_later + Duration::minutes(10), 10)
        .await
        .unwrap();
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].status, Status::Deferred);
}

async fn a_restarted_instance_releases_its_claims_at_once(store: &Db) {
    let customers: Vec<_> = ["a", "b", "c"].map(customer).to_vec();
    store.upsert_customers(&customers, t0()).await.unwrap();
    let batch: Vec<_> = ["a", "b", "c"]
        .map(|c| message(c, "welcome", "signup_at"))
        .to_vec();
    plan_messages(store, &batch, t0()).await.unwrap();
    let now = t0() + Duration::hours(2);
    let lease = now + Duration::minutes(1);
    // web1 claims two and starts sending one; web2, alive, claims the third.
    let mine = store.claim("web1", now, lease, 2).await.unwrap();
    assert_eq!(mine.len(), 2);
    let theirs = store.claim("web2", now, lease, 10).await.unwrap();
    assert_eq!(theirs.len(), 1);
    let in_flight = &mine[0];
    let not_started = &mine[1];
    store
        .begin_sending("web1", &[in_flight.id], now, lease, lease)
        .await
        .unwrap();
    // web1 dies and starts again, long before its lease would run out.
    assert_eq!(
        store
            .release_claims(Some("web1"), now, false)
            .await
            .unwrap(),
        Released {
            interrupted: 1,
            waiting: 1
        }
    );
    let status_of = async |id: MessageId| {
        let all = store.messages(&MessageFilter::default()).await.unwrap();
        let m = all.into_iter().find(|m| m.id == id.to_string()).unwrap();
        (m.status, m.reason)
    };
    let (status, reason) = status_of(in_flight.id).await;
    assert_eq!(status, "unknown", "in flight: the server may have it");
    assert!(reason.unwrap().contains("not sent again"));
    assert_eq!(status_of(not_started.id).await.0, "planned");
    // What it had not started is free at once; web2's claim holds.
    let again = store.claim("web1", now, lease, 10).await.unwrap();
    assert_eq!(
        again.iter().map(|m| m.id).collect::<Vec<_>>(),
        [not_started.id]
    );
    // The send that was in flight did finish after all: the truth wins.
    let mut sent = Settle::end(in_flight, Status::Sent, String::new());
    sent.sent_at = Some(now);
    sent.attempt = Some(Attempt {
        started_at: now,
        finished_at: now,
        outcome: AttemptOutcome::Sent,
        smtp_code: Some(250),
        detail: "250 ok".into(),
    });
    store.settle("web1", &[sent], now).await.unwrap();
    assert_eq!(status_of(in_flight.id).await.0, "sent");
    // Every claim (SQLite, where the instance lock proves every earlier
    // process gone): web1's new one and web2's.
    assert_eq!(
        store.release_claims(None, now, false).await.unwrap(),
        Released {
            interrupted: 0,
            waiting: 2
        }
    );
    let next = store.claim("next", now, lease, 10).await.unwrap();
    let mut ids: Vec<_> = next.iter().map(|m| m.id).collect();
    ids.sort();
    let mut expected = vec![not_started.id, theirs[0].id];
    expected.sort();
    assert_eq!(ids, expected);
    // With resend_unknown, an interrupted send goes again.
    store
        .begin_sending("next", &[theirs[0].id], now, lease, lease)
        .await
        .unwrap();
    assert_eq!(
        store.release_claims(Some("next"), now, true).await.unwrap(),
        Released {
            interrupted: 1,
            waiting: 1
        }
    );
    assert_eq!(status_of(theirs[0].id).await.0, "deferred");
}

async fn marking_renews_only_the_leases_that_end_soon(store: &Db) {
    welcome_a_and_b(store).await;
    let now = t0() + Duration::hours(2);
    let lease = now + Duration::minutes(10);
    let claimed = store.claim("web1", now, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    // Renewing those that end within 6 minutes, a claim with 10 left keeps
    // its own end…
    let ids = [claimed[0].id, claimed[1].id];
    let fresh = store.begin_sending(
        "web1",
        &ids[..1],
        now,
        now + Duration::minutes(12),
        now + Duration::minutes(6),
    );
    assert_eq!(fresh.await.unwrap().len(), 1);
    // …renewing those that end within 15, one with 10 left is renewed.
    let stale = store.begin_sending(
        "web1",
        &ids[1..],
        now,
        now + Duration::minutes(30),
        now + Duration::minutes(15),
    );
    assert_eq!(stale.await.unwrap().len(), 1);
    let past_lease = lease + Duration::seconds(1);
    assert_eq!(
        store.recover_sending(past_lease, false).await.unwrap(),
        1,
        "only the claim that was not renewed ran out"
    );
    let left = store.messages(&MessageFilter::default()).await.unwrap();
    let status = |id: MessageId| {
        let id = id.to_string();
        left.iter().find(|m| m.id == id).unwrap().status.clone()
    };
    assert_eq!(status(claimed[0].id), "unknown");
    assert_eq!(status(claimed[1].id), "sending");
}

async fn renewed_claims_outlast_their_first_lease(store: &Db) {
    welcome_a_and_b(store).await;
    let now = t0() + Duration::hours(2);
    let lease = now + Duration::minutes(1);
    let claimed = store.claim("web1", now, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    store
        .begin_sending("web1", &[claimed[0].id], now, lease, lease)
        .await
        .unwrap();
    // A live instance renews what it holds, sending or not.
    let renewed = now + Duration::seconds(20) + Duration::minutes(1);
    assert_eq!(store.renew_claims("web1", renewed).await.unwrap(), 2);
    assert_eq!(store.renew_claims("web2", renewed).await.unwrap(), 0);
    assert_eq!(
        store.renew_claims("web1", lease).await.unwrap(),
        0,
        "a renewal never shortens a lease"
    );
    // Past the first lease nothing is taken over or recovered…
    let past_first = lease + Duration::seconds(1);
    assert!(
        store
            .claim("web2", past_first, past_first + Duration::minutes(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.recover_sending(past_first, false).await.unwrap(), 0);
    // …but past the renewed one, the instance is gone.
    let past_renewed = renewed + Duration::seconds(1);
    assert_eq!(store.recover_sending(past_renewed, false).await.unwrap(), 1);
    let taken = store
        .claim(
            "web2",
            past_renewed,
            past_renewed + Duration::minutes(1),
            10,
        )
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].id, claimed[1].id);
}

async fn an_instance_name_is_held_by_one_live_instance(store: &Db) {
    let first = store.hold_name("web1").await.unwrap();
    assert!(first.is_some());
    let second = store.hold_name("web1").await.unwrap();
    match store.backend() {
        // One daemon per file (the instance lock): its name is its own.
        "sqlite" => assert!(second.is_some()),
        _ => assert!(second.is_none(), "two live instances never share a name"),
    }
    assert!(
        store.hold_name("web2").await.unwrap().is_some(),
        "another name is free"
    );
    drop(second);
    // Once its holder is gone, however it ended, the name is free again.
    drop(first);
    let started = std::time::Instant::now();
    loop {
        if store.hold_name("web1").await.unwrap().is_some() {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn tidying_keeps_everything(store: &Db) {
    welcome_a_and_b(store).await;
    let now = t0() + Duration::hours(2);
    let claimed = store
        .claim("w", now, now + Duration::minutes(10), 1)
        .await
        .unwrap();
    store
        .settle(
            "w",
            &[Settle::end(&claimed[0], Status::Failed, "gone".into())],
            now,
        )
        .await
        .unwrap();
    // On PostgreSQL a vacuum, which no transaction may hold.
    store.tidy(Tidy::Rewritten).await.unwrap();
    store.tidy(Tidy::Added).await.unwrap();
    let all = store.messages(&MessageFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(store.count_customers().await.unwrap(), 2);
    assert_eq!(
        store
            .claim("v", now, now + Duration::minutes(10), 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn settling_records_attempts_and_suppressions(store: &Db) {
    store
        .upsert_customers(&[customer("a")], t0())
        .await
        .unwrap();
    plan_messages(
        store,
        &[
            message("a", "welcome", "signup_at"),
            message("a", "tip", "signup_at"),
        ],
        t0(),
    )
    .await
    .unwrap();
    let now = t0() + Duration::hours(2);
    let claimed = store
        .claim("w", now, now + Duration::minutes(10), 1)
        .await
        .unwrap();
    let m = &claimed[0];
    store
        .begin_sending(
            "w",
            &[m.id],
            now,
            now + Duration::minutes(10),
            now + Duration::minutes(10),
        )
        .await
        .unwrap();
    let attempt = Attempt {
        started_at: now,
        finished_at: now,
        outcome: AttemptOutcome::Permanent,
        smtp_code: Some(550),
        detail: "5.1.1 no such user".into(),
    };
    let mut settle = Settle::end(m, Status::Failed, "refused: 5.1.1 no such user".into());
    settle.subject = Some("Welcome".into());
    settle.attempt = Some(attempt.clone());
    settle.suppress = Some(Suppression {
        customer_id: m.customer.record.id.clone(),
        category: "*".into(),
        reason: "hard bounce: 5.1.1".into(),
        source: "smtp".into(),
    });
    store.settle("w", &[settle.clone()], now).await.unwrap();
    // Recording twice (a retried transaction) keeps one suppression.
    store
        .settle(
            "w",
            &[Settle {
                attempt: None,
                ..settle
            }],
            now,
        )
        .await
        .unwrap();
    assert_eq!(store.attempts(&m.id).await.unwrap(), vec![attempt]);
    let views = store.messages(&MessageFilter::default()).await.unwrap();
    let view = views.iter().find(|v| v.id == m.id.to_string()).unwrap();
    assert_eq!(view.status, "failed");
    assert_eq!(view.attempts, 1);
    assert_eq!(view.subject.as_deref(), Some("Welcome"));
    // Old attempt details go; the message keeps its status and count.
    assert_eq!(store.prune_attempts(now).await.unwrap(), 0, "not older");
    assert_eq!(
        store
            .prune_attempts(now + Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
    assert!(store.attempts(&m.id).await.unwrap().is_empty());
    let views = store.messages(&MessageFilter::default()).await.unwrap();
    let view = views.iter().find(|v| v.id == m.id.to_string()).unwrap();
    assert_eq!((view.status.as_str(), view.attempts), ("failed", 1));
    // The other message now carries the suppression when claimed.
    let next = store
        .claim("w", now, now + Duration::minutes(10), 10)
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].suppressed.as_deref(), Some("hard bounce: 5.1.1"));
    let sent = store
        .sent_since(&[id("a")], now - Duration::days(7))
        .await
        .unwrap();
    assert!(
        sent.is_empty(),
        "a failed message does not count toward the cap"
    );
}

/// The cap counts each send once, though delivery names a customer once
/// for each of their waiting messages.
async fn each_send_counts_once_however_often_its_customer_is_named(store: &Db) {
    welcome_a_and_b(store).await;
    let now = t0() + Duration::hours(2);
    let lease = now + Duration::minutes(10);
    let claimed = store.claim("w", now, lease, 10).await.unwrap();
    let a = claimed
        .iter()
        .find(|m| m.customer.record.id == id("a"))
        .unwrap();
    store
        .begin_sending("w", &[a.id], now, lease, lease)
        .await
        .unwrap();
    let mut sent = Settle::end(a, Status::Sent, String::new());
    sent.reason = None;
    sent.sent_at = Some(now);
    store.settle("w", &[sent], now).await.unwrap();
    let counted = store
        .sent_since(&[id("a"), id("b"), id("a")], now - Duration::days(7))
        .await
        .unwrap();
    assert_eq!(counted.get(&id("a")), Some(&vec![now]), "{counted:?}");
    assert!(!counted.contains_key(&id("b")), "b's welcome has not gone");
}

/// Customers c0…c{n-1} with a message each, shaped by `shape(i, message)`.
async fn one_message_each(store: &Db, n: usize, shape: impl Fn(usize, &mut NewMessage)) {
    let customers: Vec<_> = (0..n).map(|i| customer(&format!("c{i}"))).collect();
    store.upsert_customers(&customers, t0()).await.unwrap();
    let batch: Vec<_> = (0..n)
        .map(|i| {
            let mut m = message(&format!("c{i}"), "s", "o");
            shape(i, &mut m);
            m
        })
        .collect();
    plan_messages(store, &batch, t0()).await.unwrap();
}

async fn claims_take_the_most_important_first(store: &Db) {
    // Tips (priority 4) due early, incident notices (0) due later.
    one_message_each(store, 6, |i, m| {
        m.priority = if i < 3 { 4 } else { 0 };
        m.not_before = t0() + Duration::minutes(if i < 3 { 1 } else { 30 });
    })
    .await;
    let now = t0() + Duration::hours(1);
    let first = store
        .claim("w", now, now + Duration::minutes(10), 4)
        .await
        .unwrap();
    let customers: Vec<&str> = first
        .iter()
        .map(|m| m.customer.record.id.as_str())
        .collect();
    assert_eq!(
        customers,
        ["c3", "c4", "c5", "c0"],
        "priority first, then the oldest"
    );
    let rest = store
        .claim("w", now, now + Duration::minutes(10), 10)
        .await
        .unwrap();
    assert_eq!(rest.len(), 2);
}

async fn claims_pass_over_a_priority_another_instance_holds(store: &Db) {
    // Two incident notices (0) and two tips (3), all due.
    one_message_each(store, 4, |i, m| {
        m.priority = if i < 2 { 0 } else { 3 };
        m.not_before = t0() - Duration::minutes(10 - i as i64);
    })
    .await;
    let until = t0() + Duration::hours(1);
    let ids = |taken: Vec<Outgoing>| -> Vec<String> {
        taken
            .iter()
            .map(|m| m.customer.record.id.as_str().to_owned())
            .collect()
    };
    let a = store.claim("a", t0(), until, 2).await.unwrap();
    assert_eq!(ids(a), ["c0", "c1"], "the most important first");
    let b = store.claim("b", t0(), until, 10).await.unwrap();
    assert_eq!(
        ids(b),
        ["c2", "c3"],
        "the next priority, not what another instance holds"
    );
    let c = store.claim("c", t0(), until, 10).await.unwrap();
    assert!(ids(c).is_empty(), "nothing is left to claim");
}

async fn claims_pass_over_priorities_with_nothing_due(store: &Db) {
    // Priorities 0 and 5 wait for later; only priority 2 is due at t0.
    one_message_each(store, 6, |i, m| {
        m.priority = [0, 2, 5][i % 3];
        m.not_before = if i % 3 == 1 {
            t0() - Duration::minutes(i as i64)
        } else {
            t0() + Duration::minutes(30 + i as i64)
        };
    })
    .await;
    // Leases that outlast the test: nothing claimed comes back.
    let claim = |now: DateTime<Utc>| async move {
        let taken = store
            .claim("w", now, t0() + Duration::hours(2), 10)
            .await
            .unwrap();
        taken
            .iter()
            .map(|m| m.customer.record.id.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        claim(t0() - Duration::minutes(5)).await,
        Vec::<String>::new(),
        "nothing is due yet"
    );
    assert_eq!(claim(t0()).await, ["c4", "c1"], "only what is due");
    assert_eq!(
        claim(t0() + Duration::minutes(29)).await,
        Vec::<String>::new(),
        "the rest is still waiting"
    );
    assert_eq!(
        claim(t0() + Duration::minutes(40)).await,
        ["c0", "c3", "c2", "c5"],
        "then both other priorities, the most important first"
    );
}

/// Customers a and b with a welcome each: (tend's id, Message-ID).
async fn welcomes_to_a_and_b(store: &Db) -> [(MessageId, String); 2] {
    welcome_a_and_b(store).await;
    let views = store.messages(&MessageFilter::default()).await.unwrap();
    ["a", "b"].map(|who| {
        let view = views.iter().find(|v| v.customer_id == who).unwrap();
        (
            view.id.parse::<MessageId>().unwrap(),
            view.message_id.clone().unwrap(),
        )
    })
}

async fn preferences_lift_only_what_the_customer_chose(store: &Db) {
    let [(to_a, _), (to_b, _)] = welcomes_to_a_and_b(store).await;
    assert_eq!(store.subscriptions(to_a).await.unwrap(), Some(Vec::new()));
    assert_eq!(store.subscriptions(MessageId::new()).await.unwrap(), None);

    // The customer leaves tips and all mail; a hard bounce also stopped
    // all mail to someone else.
    let page = Preferences {
        unsubscribe: vec!["tips".into(), "*".into()],
        resubscribe: vec!["onboarding".into()],
        source: Source::PreferencesPage,
    };
    store.set_preferences(to_a, &page, t0()).await.unwrap();
    let categories = |s: Vec<Suppression>| s.into_iter().map(|s| s.category).collect::<Vec<_>>();
    let left = store.subscriptions(to_a).await.unwrap().unwrap();
    assert_eq!(categories(left.clone()), ["*", "tips"]);
    assert_eq!(left[0].source, "preferences page");
    assert_eq!(
        store.subscriptions(to_b).await.unwrap(),
        Some(Vec::new()),
        "another customer's choices are their own"
    );
    let now = t0() + Duration::hours(2);
    let lease = now + Duration::minutes(10);
    let claimed = store.claim("w", now, lease, 10).await.unwrap();
    let to_b_claimed = claimed.iter().find(|m| m.id == to_b).unwrap();
    store
        .begin_sending("w", &[to_b], now, lease, lease)
        .await
        .unwrap();
    let mut bounced = Settle::end(to_b_claimed, Status::Failed, "refused: 5.1.1".into());
    bounced.suppress = Some(Suppression {
        customer_id: id("b"),
        category: "*".into(),
        reason: "hard bounce: 550 5.1.1 no such user".into(),
        source: "smtp".into(),
    });
    store.settle("w", &[bounced], now).await.unwrap();

    // Coming back lifts the customer's own choice, not a bounce.
    let back = Preferences {
        unsubscribe: Vec::new(),
        resubscribe: vec!["tips".into(), "*".into()],
        source: Source::PreferencesPage,
    };
    store.set_preferences(to_a, &back, t0()).await.unwrap();
    assert_eq!(store.subscriptions(to_a).await.unwrap(), Some(Vec::new()));
    store.set_preferences(to_b, &back, t0()).await.unwrap();
    assert_eq!(
        categories(store.subscriptions(to_b).await.unwrap().unwrap()),
        ["*"],
        "a hard bounce is not lifted from the preferences page"
    );
    let unsubscribed: Vec<_> = store
        .responses_of(to_a)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.0, r.1.unwrap()))
        .collect();
    assert_eq!(
        unsubscribed,
        [
            ("unsubscribe".to_owned(), "tips".to_owned()),
            ("unsubscribe".to_owned(), "*".to_owned())
        ]
    );
}

/// One inbound message answering `by_token`/`by_reference`, as
/// `inbound::prepare` would make it.
fn inbound(
    dedupe: &str,
    by_token: Option<MessageId>,
    by_reference: Vec<(MessageId, String)>,
    response: Option<(ResponseKind, &str)>,
    effect: Effect,
) -> InboundMail {
    InboundMail {
        id: uuid::Uuid::now_v7(),
        source: Source::File,
        received_at: t0(),
        dedupe: dedupe.into(),
        classification: Classification::Reply,
        raw: b"Subject: hi\r\n\r\nhello".to_vec(),
        by_token,
        by_reference,
        response: response.map(|(kind, value)| InboundResponse {
            kind,
            value: Some(value.into()),
            comment: Some("words".into()),
        }),
        effect,
    }
}

async fn inbound_mail_is_matched_kept_once_and_suppresses(store: &Db) {
    let [(to_a, header_a), (to_b, header_b)] = welcomes_to_a_and_b(store).await;

    // By token.
    let reply = inbound(
        "r1@x",
        Some(to_a),
        Vec::new(),
        Some((ResponseKind::Reply, "")),
        Effect::Nothing,
    );
    assert_eq!(
        store.record_inbound(&reply).await.unwrap(),
        InboundRecorded::Kept {
            message: Some(to_a),
            customer: Some(id("a")),
            suppressed: false
        }
    );
    // A second copy changes nothing.
    let again = InboundMail {
        id: uuid::Uuid::now_v7(),
        ..reply.clone()
    };
    assert_eq!(
        store.record_inbound(&again).await.unwrap(),
        InboundRecorded::Duplicate
    );
    assert_eq!(store.responses_of(to_a).await.unwrap().len(), 1);

    // By our Message-ID; a foreign id of the same shape matches nothing.
    let forged = (to_b, "someone-else@elsewhere.example".to_owned());
    let bounce = inbound(
        "b1@x",
        None,
        vec![forged.clone(), (to_b, header_b.clone())],
        Some((ResponseKind::Bounce, "5.1.1")),
        Effect::Suppress {
            reason: "hard bounce: 5.1.1".into(),
            source: Source::Bounce,
        },
    );
    assert_eq!(
        store.record_inbound(&bounce).await.unwrap(),
        InboundRecorded::Kept {
            message: Some(to_b),
            customer: Some(id("b")),
            suppressed: true
        }
    );
    let left = store.subscriptions(to_b).await.unwrap().unwrap();
    assert_eq!(
        (left[0].category.as_str(), left[0].source.as_str()),
        ("*", "bounce")
    );
    assert_eq!(
        store.responses_of(to_b).await.unwrap(),
        vec![(
            "bounce".to_owned(),
            Some("5.1.1".to_owned()),
            Some("words".to_owned())
        )]
    );

    // Unmatched: kept, nothing suppressed.
    let stray = inbound(
        "s1@x",
        None,
        vec![forged],
        Some((ResponseKind::Reply, "")),
        Effect::Nothing,
    );
    assert_eq!(
        store.record_inbound(&stray).await.unwrap(),
        InboundRecorded::Kept {
            message: None,
            customer: None,
            suppressed: false
        }
    );

    // Soft bounces suppress at the limit, counted since the window start.
    let soft = |n: usize| {
        inbound(
            &format!("soft{n}@x"),
            None,
            vec![(to_a, header_a.clone())],
            Some((ResponseKind::Bounce, "4.2.2")),
            Effect::SoftBounce {
                limit: 2,
                since: t0() - Duration::days(30),
            },
        )
    };
    let first = store.record_inbound(&soft(1)).await.unwrap();
    assert!(
        matches!(
            first,
            InboundRecorded::Kept {
                suppressed: false,
                ..
            }
        ),
        "{first:?}"
    );
    let second = store.record_inbound(&soft(2)).await.unwrap();
    assert!(
        matches!(
            second,
            InboundRecorded::Kept {
                suppressed: true,
                ..
            }
        ),
        "{second:?}"
    );
    let left = store.subscriptions(to_a).await.unwrap().unwrap();
    assert!(
        left[0].reason.starts_with("2 soft bounces since"),
        "{left:?}"
    );
}

async fn incidents_record_who_was_told_and_quiet_until_closed(store: &Db) {
    use tend::domain::incident::{Incident, IncidentKind, IncidentStatus, NoticeSpec};
    store
        .upsert_customers(&[customer("a"), customer("b"), customer("c")], t0())
        .await
        .unwrap();
    let incident = Incident {
        id: "INC-1".into(),
        kind: IncidentKind::Incident,
        title: "Slow API".into(),
        status: IncidentStatus::Investigating,
        affects: "true".into(),
        template: "incidents/notice".into(),
        message: "Looking into it".into(),
        starts_at: None,
        ends_at: None,
        opened_at: t0(),
        resolved_at: None,
    };
    assert!(store.create_incident(&incident).await.unwrap());
    assert!(
        !store.create_incident(&incident).await.unwrap(),
        "an id is taken once"
    );
    assert_eq!(
        store.incident("INC-1").await.unwrap(),
        Some(incident.clone())
    );
    assert_eq!(store.incident("INC-2").await.unwrap(), None);

    let spec = NoticeSpec {
        incident: &incident,
        step: "open".into(),
        template: "incidents/notice",
        message: "Looking into it",
        due_at: t0(),
        urgent: true,
        expires_at: t0() + Duration::days(3),
        priority: 0,
        domain: "acme.example",
    };
    let affected = [id("a"), id("b")];
    let notices: Vec<_> = affected
        .iter()
        .map(|c| spec.message(c, &format!("{}@example.com", c.as_str()), None))
        .collect();
    assert_eq!(
        store
            .record_notices("INC-1", &affected, &notices, t0())
            .await
            .unwrap(),
        2
    );
    let again: Vec<_> = affected
        .iter()
        .map(|c| spec.message(c, "x@example.com", None))
        .collect();
    assert_eq!(
        store
            .record_notices("INC-1", &affected, &again, t0())
            .await
            .unwrap(),
        0,
        "one notice per step"
    );

    // b's notice is suppressed: the follow-ups go to a alone.
    let lease = t0() + Duration::minutes(10);
    let claimed = store.claim("w", t0(), lease, 10).await.unwrap();
    assert!(claimed.iter().all(|m| m.urgent && m.notice.is_some()));
    let to_b = claimed
        .iter()
        .find(|m| m.customer.record.id == id("b"))
        .unwrap();
    store
        .begin_sending("w", &[to_b.id], t0(), lease, lease)
        .await
        .unwrap();
    store
        .settle(
            "w",
            &[Settle::end(to_b, Status::Suppressed, "suppressed".into())],
            t0(),
        )
        .await
        .unwrap();
    let recipients = store.recipients("INC-1").await.unwrap();
    assert_eq!(recipients.len(), 1);
    assert_eq!(recipients[0].customer_id, id("a"));
    assert_eq!(recipients[0].first_message_id, notices[0].message_id);
    assert_eq!(
        store.recipients_sample("INC-1", 10).await.unwrap(),
        recipients
    );
    assert_eq!(store.told("INC-1").await.unwrap(), 1);
    assert_eq!(store.told("NOPE").await.unwrap(), 0);

    let quiet = store
        .quiet_customers(&[id("a"), id("b"), id("c")])
        .await
        .unwrap();
    assert_eq!(quiet.len(), 2, "{quiet:?}");
    assert_eq!(quiet[&id("a")], "INC-1");

    let seq = store
        .update_incident(
            "INC-1",
            Some(IncidentStatus::Identified),
            "Found it",
            true,
            t0(),
        )
        .await
        .unwrap();
    assert!(seq.is_some());
    assert_eq!(
        store.incident("INC-1").await.unwrap().unwrap().status,
        IncidentStatus::Identified
    );
    assert_eq!(
        store
            .update_incident("INC-9", None, "x", false, t0())
            .await
            .unwrap(),
        None
    );

    let later = t0() + Duration::hours(2);
    assert_eq!(
        store
            .close_incident("INC-1", IncidentStatus::Resolved, "Fixed", "x", later)
            .await
            .unwrap(),
        Some(0),
        "an incident has no announcements to withdraw"
    );
    assert_eq!(
        store
            .close_incident("INC-1", IncidentStatus::Resolved, "again", "x", later)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .update_incident("INC-1", None, "late", false, later)
            .await
            .unwrap(),
        None
    );
    assert!(
        store.quiet_customers(&[id("a")]).await.unwrap().is_empty(),
        "quiet ends with the incident"
    );
    let listed = store.incidents().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].status, listed[0].notified),
        (IncidentStatus::Resolved, 1)
    );
    assert_eq!(listed[0].resolved_at, Some(later));
}

async fn a_maintenance_starts_and_closes_once_and_what_waits_never_goes(store: &Db) {
    use tend::domain::incident::{Incident, IncidentKind, IncidentStatus, NoticeSpec};
    store
        .upsert_customers(&[customer("a"), customer("b")], t0())
        .await
        .unwrap();
    let starts = t0() + Duration::days(2);
    let ends = starts + Duration::hours(2);
    let maintenance = |id: &str| Incident {
        id: id.into(),
        kind: IncidentKind::Maintenance,
        title: "DB upgrade".into(),
        status: IncidentStatus::Scheduled,
        affects: "true".into(),
        template: "incidents/maintenance".into(),
        message: String::new(),
        starts_at: Some(starts),
        ends_at: Some(ends),
        opened_at: t0(),
        resolved_at: None,
    };
    let (called_off, upgrade) = (maintenance("MNT-1"), maintenance("MNT-2"));
    for incident in [&called_off, &upgrade] {
        assert!(store.create_incident(incident).await.unwrap());
        // A day ahead and an hour ahead, to a and to b.
        let mut notices = Vec::new();
        for (step, lead) in [
            ("announce-1d", Duration::days(1)),
            ("announce-1h", Duration::hours(1)),
        ] {
            let spec = NoticeSpec {
                incident,
                step: step.into(),
                template: "incidents/maintenance",
                message: "",
                due_at: starts - lead,
                urgent: false,
                expires_at: starts,
                priority: 1,
                domain: "acme.example",
            };
            for c in [id("a"), id("b")] {
                notices.push(spec.message(&c, &format!("{}@example.com", c.as_str()), None));
            }
        }
        let affected = [id("a"), id("b")];
        assert_eq!(
            store
                .record_notices(&incident.id, &affected, &notices, t0())
                .await
                .unwrap(),
            4
        );
    }
    // A day ahead: MNT-1's goes to a; b's is claimed by a worker that has
    // not settled it yet; MNT-2's wait again.
    let day_before = starts - Duration::days(1);
    let lease = day_before + Duration::minutes(10);
    let claimed = store.claim("w", day_before, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 4);
    let of = |incident: &str, customer: &str| {
        claimed
            .iter()
            .find(|m| m.key.occurrence == incident && m.customer.record.id == id(customer))
            .unwrap()
            .clone()
    };
    let told = of("MNT-1", "a");
    store
        .begin_sending("w", &[told.id], day_before, lease, lease)
        .await
        .unwrap();
    let mut sent = Settle::end(&told, Status::Sent, "accepted: 250 ok".into());
    sent.sent_at = Some(day_before);
    let wait = |m: &tend::domain::message::Outgoing| {
        Settle::hold(m, starts - Duration::hours(2), "window".into())
    };
    let waiting = [sent, wait(&of("MNT-2", "a")), wait(&of("MNT-2", "b"))];
    store.settle("w", &waiting, day_before).await.unwrap();

    let due = |at| async move {
        let due = store.maintenances_due(at).await.unwrap();
        due.into_iter().map(|i| i.id).collect::<Vec<_>>()
    };
    assert!(due(starts - Duration::seconds(1)).await.is_empty());
    assert_eq!(due(starts).await, ["MNT-1", "MNT-2"]);

    // Called off, while the worker still holds its claim: what had not
    // gone is withdrawn (the claimed one too), once.
    let off = day_before + Duration::minutes(5);
    assert_eq!(
        store
            .close_incident(
                "MNT-1",
                IncidentStatus::Cancelled,
                "",
                "withdrawn: off",
                off
            )
            .await
            .unwrap(),
        Some(3)
    );
    assert_eq!(
        store
            .close_incident("MNT-1", IncidentStatus::Cancelled, "", "again", off)
            .await
            .unwrap(),
        None
    );
    // The worker's late word on the claimed one changes nothing.
    let late = [wait(&of("MNT-1", "b"))];
    store.settle("w", &late, off).await.unwrap();
    let messages = store.messages(&MessageFilter::default()).await.unwrap();
    let fate = |incident: &str, customer: &str, step: &str| {
        let m = messages
            .iter()
            .find(|m| m.occurrence == incident && m.customer_id == customer && m.step == step)
            .unwrap();
        (m.status.clone(), m.reason.clone().unwrap_or_default())
    };
    assert_eq!(fate("MNT-1", "a", "announce-1d").0, "sent");
    for (customer, step) in [
        ("b", "announce-1d"),
        ("a", "announce-1h"),
        ("b", "announce-1h"),
    ] {
        assert_eq!(
            fate("MNT-1", customer, step),
            ("expired".into(), "withdrawn: off".into()),
            "{customer} {step}"
        );
    }
    let told: Vec<_> = store.recipients("MNT-1").await.unwrap();
    assert_eq!(told.len(), 1, "only a was told");
    assert_eq!(told[0].customer_id, id("a"));
    assert_eq!(store.recipients_sample("MNT-1", 1).await.unwrap(), told);
    assert_eq!(store.told("MNT-1").await.unwrap(), 1);
    assert_eq!(due(starts).await, ["MNT-2"], "a closed one is left alone");

    // MNT-2 starts: everything still waiting expires, once.
    assert_eq!(
        store
            .start_maintenance("MNT-2", "Started", "expired: it started", starts)
            .await
            .unwrap(),
        Some(4)
    );
    assert_eq!(
        store
            .start_maintenance("MNT-2", "Started", "again", starts)
            .await
            .unwrap(),
        None
    );
    let messages = store.messages(&MessageFilter::default()).await.unwrap();
    assert!(
        messages
            .iter()
            .filter(|m| m.occurrence == "MNT-2")
            .all(|m| m.status == "expired" && m.reason.as_deref() == Some("expired: it started")),
        "{messages:?}"
    );
    let running = store.incident("MNT-2").await.unwrap().unwrap();
    assert_eq!(
        (running.status, running.resolved_at),
        (IncidentStatus::InProgress, None)
    );
    assert!(due(ends - Duration::seconds(1)).await.is_empty());
    assert_eq!(due(ends).await, ["MNT-2"]);
    // Started, it can no longer be called off (a cancel that read it as
    // scheduled a moment before loses the race), only completed.
    assert_eq!(
        store
            .close_incident("MNT-2", IncidentStatus::Cancelled, "Off", "x", ends)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .close_incident("MNT-2", IncidentStatus::Completed, "Done", "x", ends)
            .await
            .unwrap(),
        Some(0)
    );
    assert!(due(ends).await.is_empty());
    let listed = store.incidents().await.unwrap();
    let shown: Vec<_> = listed
        .iter()
        .map(|i| (i.id.as_str(), i.status, i.resolved_at, i.notified))
        .collect();
    assert_eq!(
        shown,
        [
            ("MNT-1", IncidentStatus::Cancelled, Some(off), 1),
            ("MNT-2", IncidentStatus::Completed, Some(ends), 0),
        ]
    );
}

async fn an_unsubscribe_by_mail_leaves_the_category_once(store: &Db) {
    let [(to_a, _), (to_b, _)] = welcomes_to_a_and_b(store).await;
    let leave = |dedupe: &str| InboundMail {
        classification: Classification::Unsubscribe,
        ..inbound(
            dedupe,
            Some(to_a),
            Vec::new(),
            None,
            Effect::Unsubscribe(Preferences {
                unsubscribe: vec!["onboarding".into()],
                resubscribe: Vec::new(),
                source: Source::Mailto,
            }),
        )
    };
    assert_eq!(
        store.record_inbound(&leave("u1@x")).await.unwrap(),
        InboundRecorded::Kept {
            message: Some(to_a),
            customer: Some(id("a")),
            suppressed: false
        }
    );
    let left = store.subscriptions(to_a).await.unwrap().unwrap();
    assert_eq!(
        (
            left[0].category.as_str(),
            left[0].source.as_str(),
            left[0].reason.as_str()
        ),
        (
            "onboarding",
            "mailto",
            "the customer unsubscribed from onboarding (mailto)"
        )
    );
    let recorded = vec![(
        "unsubscribe".to_owned(),
        Some("onboarding".to_owned()),
        None,
    )];
    assert_eq!(store.responses_of(to_a).await.unwrap(), recorded);
    let all = store.responses(t0()).await.unwrap();
    assert_eq!(all[0].source, "mailto");
    // The same mail again, or another asking the same: nothing more.
    assert_eq!(
        store.record_inbound(&leave("u1@x")).await.unwrap(),
        InboundRecorded::Duplicate
    );
    store.record_inbound(&leave("u2@x")).await.unwrap();
    assert_eq!(store.responses_of(to_a).await.unwrap(), recorded);
    assert_eq!(store.subscriptions(to_b).await.unwrap(), Some(Vec::new()));
    // The customer chose it, so the preferences page can take it back.
    let back = Preferences {
        unsubscribe: Vec::new(),
        resubscribe: vec!["onboarding".into()],
        source: Source::PreferencesPage,
    };
    store.set_preferences(to_a, &back, t0()).await.unwrap();
    assert_eq!(store.subscriptions(to_a).await.unwrap(), Some(Vec::new()));
}

/// Readiness asks a store whether its writes fail, and probes with one
/// small write while they do; the probe leaves the planner's state alone.
async fn a_store_taking_writes_reports_no_failure_and_takes_a_probe(store: &Db) {
    store.replan_all("before the probe").await.unwrap();
    assert_eq!(store.write_failure(), None);
    store.probe_write().await.unwrap();
    store.probe_write().await.unwrap();
    assert_eq!(store.write_failure(), None);
    assert_eq!(
        store.planner_fingerprint().await.unwrap().as_deref(),
        Some("before the probe")
    );
}

/// A daily occurrence of `customer`'s "daily" step, due `days_ago` before t0.
fn daily(customer: &str, days_ago: i64) -> NewMessage {
    let due = t0() - Duration::days(days_ago);
    let mut m = message(customer, "daily", &due.to_rfc3339());
    m.due_at = due;
    m.not_before = due;
    m
}

/// Catch-up in the outbox: planning a newer occurrence of a recurring step
/// expires the step's older messages still waiting, even one an instance
/// has claimed (which can then neither send it nor put it back to wait);
/// one being sent, another step's and another customer's stay; recording
/// the same page again changes nothing.
async fn a_newer_occurrence_supersedes_what_still_waits(store: &Db) {
    store
        .upsert_customers(&[customer("a"), customer("b")], t0())
        .await
        .unwrap();
    let mut other_step = daily("a", 2);
    other_step.key.step = "weekly".into();
    plan_messages(
        store,
        &[
            daily("a", 3),
            daily("a", 2),
            daily("a", 1),
            other_step,
            daily("b", 1),
        ],
        t0(),
    )
    .await
    .unwrap();
    // An instance claims a's three; it begins sending the oldest.
    let now = t0();
    let lease = now + Duration::minutes(10);
    let claimed = store.claim("w", now, lease, 10).await.unwrap();
    let of_a: Vec<&Outgoing> = claimed
        .iter()
        .filter(|m| m.customer.record.id.as_str() == "a" && m.key.step == "daily")
        .collect();
    assert_eq!(of_a.len(), 3);
    let oldest = of_a.iter().min_by_key(|m| m.due_at).unwrap();
    assert_eq!(
        store
            .begin_sending("w", &[oldest.id], now, lease, lease)
            .await
            .unwrap(),
        [oldest.id]
    );

    let newest = message("a", "daily", &t0().to_rfc3339());
    let plan = PlanWrite {
        planned: vec![newest],
        superseding: vec![Supersede {
            customer_id: id("a"),
            playbook: "onboarding".into(),
            step: "daily".into(),
            before: t0(),
        }],
        ..PlanWrite::default()
    };
    assert_eq!(store.record_plan(&plan, now).await.unwrap(), recorded(1, 2));
    let status =
        |all: &[tend::domain::message::MessageView], who: &str, step: &str, due: DateTime<Utc>| {
            all.iter()
                .find(|m| m.customer_id == who && m.step == step && m.due_at == due)
                .map(|m| (m.status.clone(), m.reason.clone()))
                .unwrap()
        };
    let all = store.messages(&MessageFilter::default()).await.unwrap();
    let superseded = ("expired".to_owned(), Some(SUPERSEDED.to_owned()));
    assert_eq!(
        status(&all, "a", "daily", t0() - Duration::days(2)),
        superseded
    );
    assert_eq!(
        status(&all, "a", "daily", t0() - Duration::days(1)),
        superseded
    );
    assert_eq!(
        status(&all, "a", "daily", t0() - Duration::days(3)).0,
        "sending"
    );
    assert_eq!(status(&all, "a", "daily", t0()).0, "planned");
    assert_eq!(
        status(&all, "a", "weekly", t0() - Duration::days(2)).0,
        "planned"
    );
    assert_eq!(
        status(&all, "b", "daily", t0() - Duration::days(1)).0,
        "planned"
    );

    // The claimer can no longer send them, nor put one back to wait.
    let gone: Vec<MessageId> = of_a
        .iter()
        .filter(|m| m.id != oldest.id)
        .map(|m| m.id)
        .collect();
    assert!(
        store
            .begin_sending("w", &gone, now, lease, lease)
            .await
            .unwrap()
            .is_empty()
    );
    let held = of_a.iter().find(|m| m.id == gone[0]).unwrap();
    store
        .settle("w", &[Settle::hold(held, lease, "capped".into())], now)
        .await
        .unwrap();
    let after = store.messages(&MessageFilter::default()).await.unwrap();
    assert_eq!(after, all, "nothing changed by the lapsed claim");

    // The same page again (a re-plan, a restart): nothing new.
    let again = PlanWrite {
        planned: vec![message("a", "daily", &t0().to_rfc3339())],
        ..plan
    };
    assert_eq!(
        store.record_plan(&again, now).await.unwrap(),
        recorded(0, 0)
    );
    assert_eq!(
        store.messages(&MessageFilter::default()).await.unwrap(),
        after
    );
}

/// Every statement the store sends, as it sends it, is accepted by the
/// database it goes to: a misspelt table, column or cast fails here.
async fn every_named_statement_prepares(store: &Db) {
    let runs = match store.backend() {
        "sqlite" => Runs::Sqlite,
        _ => Runs::Postgres,
    };
    let mine: Vec<_> = named()
        .into_iter()
        .filter(|n| n.runs == runs || n.runs == Runs::Both)
        .collect();
    assert!(mine.len() > 50, "only {} statements", mine.len());
    let mut refused = Vec::new();
    for statement in &mine {
        if let Err(e) = store.prepare(&statement.sql).await {
            refused.push(format!("{}: {e}\n  {}", statement.name, statement.sql));
        }
    }
    assert!(refused.is_empty(), "{}", refused.join("\n"));
}

/// What `record_plan` returns for `planned` new and `expired` new messages.
fn recorded(planned: u64, expired: u64) -> Recorded {
    Recorded { planned, expired }
}

/// Which backends run a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runs {
    Both,
    Sqlite,
    Postgres,
}

/// One statement as the store sends it, for [`named`].
#[derive(Debug, Clone)]
struct Named {
    /// The constants it is made of, joined by `+`.
    name: &'static str,
    sql: String,
    runs: Runs,
}

/// Every statement the store runs, complete as it is sent: those built at
/// run time are built here the same way, with one row or one id where a
/// list goes. `every_named_statement_prepares` prepares each on the
/// backends that run it (the database checks every table, column and
/// type), so a typo fails in CI, not in production;
/// `every_statement_of_the_store_is_named` checks that no constant of
/// `store/sql.rs` is left out.
fn named() -> Vec<Named> {
    use Runs::{Both, Postgres, Sqlite};
    use tend::domain::prefilter::{Column, Literal, Op, Prefilter};
    use tend::store::sql::*;
    // `($first, …)` with `n` placeholders.
    let row = |first: usize, n: usize| {
        let marks: Vec<String> = (first..first + n).map(|i| format!("${i}")).collect();
        format!("({})", marks.join(", "))
    };
    let sqlite_in = |column: &str, at: usize| format!("{column} IN (${at})");
    let pg_in = |column: &str, at: usize| format!("{column} = ANY(${at}::text[])");
    let one = |name, sql: &str, runs| Named {
        name,
        sql: sql.to_owned(),
        runs,
    };
    let built = |name, sql: String, runs| Named { name, sql, runs };
    let mut rollups: Vec<Named> = Vec::new();
    for grouping in tend::domain::report::Grouping::ALL {
        for sql in report_by(grouping) {
            rollups.push(Named {
                name: "report_by",
                sql,
                runs: Both,
            });
        }
    }
    let mut all = vec![
        one("SELECT_CUSTOMER", SELECT_CUSTOMER, Both),
        one("SELECT_EVENTS_OF", SELECT_EVENTS_OF, Both),
        one("COUNT_CUSTOMERS", COUNT_CUSTOMERS, Both),
        one("TRY_LEAD_PLANNING", TRY_LEAD_PLANNING, Postgres),
        one("END_LEAD_PLANNING", END_LEAD_PLANNING, Postgres),
        one("CUSTOMER_OF_MESSAGE", CUSTOMER_OF_MESSAGE, Both),
        one("INSERT_RESPONSE", INSERT_RESPONSE, Both),
        one("RESPONSES_OF", RESPONSES_OF, Both),
        one("DELETE_RESPONSES_OF", DELETE_RESPONSES_OF, Both),
        one("MESSAGE_BY_HEADER_ID", MESSAGE_BY_HEADER_ID, Both),
        one("INSERT_INBOUND", INSERT_INBOUND, Both),
        built(
            "INSERT_SIGNALS",
            format!("{INSERT_SIGNALS} VALUES {}", row(1, 5)),
            Both,
        ),
        one("SIGNALS_AFTER_SQLITE", SIGNALS_AFTER_SQLITE, Sqlite),
        one("SIGNALS_AFTER_POSTGRES", SIGNALS_AFTER_POSTGRES, Postgres),
        one(
            "LOCK_MESSAGES_OF_POSTGRES",
            LOCK_MESSAGES_OF_POSTGRES,
            Postgres,
        ),
        one(
            "CUSTOMER_OF_ANSWERED_POSTGRES",
            CUSTOMER_OF_ANSWERED_POSTGRES,
            Postgres,
        ),
        one(
            "CUSTOMER_OF_ANSWERED_SQLITE",
            CUSTOMER_OF_ANSWERED_SQLITE,
            Sqlite,
        ),
        one(
            "WRITING_ELSEWHERE_POSTGRES",
            WRITING_ELSEWHERE_POSTGRES,
            Postgres,
        ),
        one("MOVE_ROUTED", MOVE_ROUTED, Both),
        one("START_ROUTED", START_ROUTED, Both),
        built(
            "INSERT_NOTIFICATIONS+SKIP_ROUTED",
            format!("{INSERT_NOTIFICATIONS} VALUES {}{SKIP_ROUTED}", row(1, 14)),
            Both,
        ),
        one("DUE_HEADS", DUE_HEADS, Both),
        one("LOCK_HEAD_SQLITE", LOCK_HEAD_SQLITE, Sqlite),
        one("LOCK_HEAD_POSTGRES", LOCK_HEAD_POSTGRES, Postgres),
        one("CLAIM_NOTIFICATIONS", CLAIM_NOTIFICATIONS, Both),
        one("SETTLE_NOTIFICATION", SETTLE_NOTIFICATION, Both),
        built(
            "RELEASE_NOTIFICATIONS",
            format!("{RELEASE_NOTIFICATIONS}$1 AND {}", sqlite_in("id", 2)),
            Sqlite,
        ),
        built(
            "RELEASE_NOTIFICATIONS",
            format!("{RELEASE_NOTIFICATIONS}$1 AND {}", pg_in("id", 2)),
            Postgres,
        ),
        one("RECOVER_NOTIFICATIONS", RECOVER_NOTIFICATIONS, Both),
        one("CUSTOMER_EXISTS", CUSTOMER_EXISTS, Both),
        one("SENDING_TO", SENDING_TO, Both),
        one("IS_STAND_IN", IS_STAND_IN, Both),
        one("INSERT_STAND_IN", INSERT_STAND_IN, Both),
        one("ERASE_INBOUND", ERASE_INBOUND, Both),
        one("ERASE_ATTEMPTS", ERASE_ATTEMPTS, Both),
        one("ERASE_MESSAGES", ERASE_MESSAGES, Both),
        one("ERASE_RESPONSES", ERASE_RESPONSES, Both),
        one("ERASE_SUPPRESSIONS", ERASE_SUPPRESSIONS, Both),
        one("ERASE_LIFTS", ERASE_LIFTS, Both),
        one("MESSAGES_PAGE_SQLITE", MESSAGES_PAGE_SQLITE, Sqlite),
        one("MESSAGES_PAGE_POSTGRES", MESSAGES_PAGE_POSTGRES, Postgres),
        one("RESPONSES_PAGE_SQLITE", RESPONSES_PAGE_SQLITE, Sqlite),
        one("RESPONSES_PAGE_POSTGRES", RESPONSES_PAGE_POSTGRES, Postgres),
        one("SUPPRESSIONS_PAGE", SUPPRESSIONS_PAGE, Both),
        one("LIFT_SUPPRESSION", LIFT_SUPPRESSION, Both),
        one("INSERT_LIFT", INSERT_LIFT, Both),
        one("LIFTS_OF", LIFTS_OF, Both),
        one("ERASE_INCIDENT_CUSTOMERS", ERASE_INCIDENT_CUSTOMERS, Both),
        one("ERASE_SIGNALS", ERASE_SIGNALS, Both),
        one("ERASE_NOTIFICATIONS", ERASE_NOTIFICATIONS, Both),
        one("DELETE_CUSTOMER", DELETE_CUSTOMER, Both),
        one("INSERT_ERASED", INSERT_ERASED, Both),
        one("INBOUND_OF", INBOUND_OF, Both),
        built(
            "ERASED_AMONG",
            format!("{ERASED_AMONG}{}", sqlite_in("hash", 1)),
            Sqlite,
        ),
        built(
            "SUPPRESSED_AMONG",
            format!("{SUPPRESSED_AMONG}$1) AND {}", sqlite_in("customer_id", 2)),
            Sqlite,
        ),
        built(
            "SUPPRESSED_AMONG",
            format!("{SUPPRESSED_AMONG}$1) AND {}", pg_in("customer_id", 2)),
            Postgres,
        ),
        built(
            "ERASED_AMONG",
            format!("{ERASED_AMONG}{}", pg_in("hash", 1)),
            Postgres,
        ),
        one(
            "RELEASE_OWNED_NOTIFICATIONS",
            RELEASE_OWNED_NOTIFICATIONS,
            Both,
        ),
        built(
            "SETTLE_SENT+SETTLE_SENT_OF",
            format!(
                "{SETTLE_SENT}$1{SETTLE_SENT_OF}$2 AND {}",
                sqlite_in("id", 3)
            ),
            Sqlite,
        ),
        built(
            "SETTLE_SENT+SETTLE_SENT_OF",
            format!("{SETTLE_SENT}$1{SETTLE_SENT_OF}$2 AND {}", pg_in("id", 3)),
            Postgres,
        ),
        one("NOTIFICATION_COUNTS", NOTIFICATION_COUNTS, Both),
        one("BACKLOGS", BACKLOGS, Both),
        one("NOTIFICATION_TIMES", NOTIFICATION_TIMES, Both),
        one("LAST_NOTIFICATION_ERROR", LAST_NOTIFICATION_ERROR, Both),
        one("PRUNE_NOTIFICATIONS", PRUNE_NOTIFICATIONS, Both),
        one("PRUNE_SIGNALS", PRUNE_SIGNALS, Both),
        built(
            "MESSAGE_VIEWS",
            format!(
                "{MESSAGE_VIEWS}{} AND status = $2 ORDER BY id",
                sqlite_in("id", 1)
            ),
            Sqlite,
        ),
        built(
            "MESSAGE_VIEWS",
            format!(
                "{MESSAGE_VIEWS}{} AND status = $2 ORDER BY id",
                pg_in("id", 1)
            ),
            Postgres,
        ),
        one("COUNT_SOFT_BOUNCES", COUNT_SOFT_BOUNCES, Both),
        one("RESPONSES_SINCE", RESPONSES_SINCE, Both),
        one("REPORT_STATUSES", REPORT_STATUSES, Both),
        one("REPORT_STEPS", REPORT_STEPS, Both),
        one("REPORT_ANSWERS", REPORT_ANSWERS, Both),
        one("REPORT_KINDS", REPORT_KINDS, Both),
        one("SUPPRESSIONS_OF", SUPPRESSIONS_OF, Both),
        one("LIFT_CHOSEN", LIFT_CHOSEN, Both),
        one("PRUNE_ATTEMPTS", PRUNE_ATTEMPTS, Both),
        one("SELECT_MESSAGES_OF", SELECT_MESSAGES_OF, Both),
        one("RECIPIENTS_SAMPLE", RECIPIENTS_SAMPLE, Both),
        one("SET_PASSWORD", SET_PASSWORD, Both),
        one("PASSWORD_OF", PASSWORD_OF, Both),
        one("OPEN_SESSION", OPEN_SESSION, Both),
        one("SESSION_BY_TOKEN", SESSION_BY_TOKEN, Both),
        one("CLOSE_SESSION", CLOSE_SESSION, Both),
        one("CLOSE_SESSIONS_OF", CLOSE_SESSIONS_OF, Both),
        one("PRUNE_SESSIONS", PRUNE_SESSIONS, Both),
        one("INSERT_AUDIT", INSERT_AUDIT, Both),
        one("AUDITED_SINCE", AUDITED_SINCE, Both),
        one("TOLD", TOLD, Both),
        one("SUPPRESSIONS_PAGE_OF", SUPPRESSIONS_PAGE_OF, Both),
        one("SEARCH_TERMS_SQLITE", SEARCH_TERMS_SQLITE, Sqlite),
        one("SEARCH_TERMS_POSTGRES", SEARCH_TERMS_POSTGRES, Postgres),
        one("FILL_SEARCH_POSTGRES", FILL_SEARCH_POSTGRES, Postgres),
        built(
            "FOUND_CUSTOMERS",
            format!("{FOUND_CUSTOMERS}{}", sqlite_in("id", 1)),
            Sqlite,
        ),
        built(
            "FOUND_CUSTOMERS",
            format!("{FOUND_CUSTOMERS}{}", pg_in("id", 1)),
            Postgres,
        ),
        built(
            "FOUND_ACCOUNTS",
            format!("{FOUND_ACCOUNTS}{}", sqlite_in("id", 1)),
            Sqlite,
        ),
        built(
            "FOUND_ACCOUNTS",
            format!("{FOUND_ACCOUNTS}{}", pg_in("id", 1)),
            Postgres,
        ),
        one("OPEN_LINK", OPEN_LINK, Both),
        one("PRUNE_LINKS", PRUNE_LINKS, Both),
        one("LINK_OF", LINK_OF, Both),
        one("USE_LINK", USE_LINK, Both),
        one("CLOSE_LINKS_OF", CLOSE_LINKS_OF, Both),
        one("LATEST_AUDIT", LATEST_AUDIT, Both),
        one("SURVEY_ANSWERS_SINCE", SURVEY_ANSWERS_SINCE, Both),
        one("LATEST_REPLIES", LATEST_REPLIES, Both),
        one("LATEST_DETRACTORS", LATEST_DETRACTORS, Both),
        one("PING", PING, Both),
        one("COUNT_DUE", COUNT_DUE, Both),
        one("CUSTOMERS_DUE", CUSTOMERS_DUE, Both),
        one("REPLAN_ALL_SQLITE", REPLAN_ALL_SQLITE, Sqlite),
        one("REPLAN_ALL_POSTGRES", REPLAN_ALL_POSTGRES, Postgres),
        one("SELECT_PLANNER_STATE", SELECT_PLANNER_STATE, Both),
        one("UPSERT_PLANNER_STATE", UPSERT_PLANNER_STATE, Both),
        one("HISTORY_EVENTS_POSTGRES", HISTORY_EVENTS_POSTGRES, Postgres),
        one("HISTORY_STAGES_POSTGRES", HISTORY_STAGES_POSTGRES, Postgres),
        one(
            "HISTORY_MESSAGES_POSTGRES",
            HISTORY_MESSAGES_POSTGRES,
            Postgres,
        ),
        one(
            "UPDATE_PLANNED_CUSTOMERS_POSTGRES",
            UPDATE_PLANNED_CUSTOMERS_POSTGRES,
            Postgres,
        ),
        one(
            "INSERT_STAGE_CHANGES_POSTGRES",
            INSERT_STAGE_CHANGES_POSTGRES,
            Postgres,
        ),
        one(
            "INSERT_MESSAGES_POSTGRES",
            INSERT_MESSAGES_POSTGRES,
            Postgres,
        ),
        one(
            "SUPERSEDE_WAITING_POSTGRES",
            SUPERSEDE_WAITING_POSTGRES,
            Postgres,
        ),
        one("SELECT_MESSAGES", SELECT_MESSAGES, Both),
        one("NEXT_PRIORITY_SQLITE", NEXT_PRIORITY_SQLITE, Sqlite),
        one("NEXT_PRIORITY_POSTGRES", NEXT_PRIORITY_POSTGRES, Postgres),
        one("CLAIM_SQLITE", CLAIM_SQLITE, Sqlite),
        one("CLAIM_POSTGRES", CLAIM_POSTGRES, Postgres),
        one("CLAIM_FIRST_SQLITE", CLAIM_FIRST_SQLITE, Sqlite),
        one("CLAIM_FIRST_POSTGRES", CLAIM_FIRST_POSTGRES, Postgres),
        one("BEGIN_SENDING_POSTGRES", BEGIN_SENDING_POSTGRES, Postgres),
        one("SETTLE_POSTGRES", SETTLE_POSTGRES, Postgres),
        one("INSERT_SUPPRESSION", INSERT_SUPPRESSION, Both),
        one("SENT_TO_POSTGRES", SENT_TO_POSTGRES, Postgres),
        one("RECOVER_SENDING", RECOVER_SENDING, Both),
        one("DROP_EXPIRED_CLAIMS", DROP_EXPIRED_CLAIMS, Both),
        one("RELEASE_SENDING", RELEASE_SENDING, Both),
        one("RELEASE_CLAIMS", RELEASE_CLAIMS, Both),
        one("RENEW_CLAIMS", RENEW_CLAIMS, Both),
        one("TRY_HOLD_NAME_POSTGRES", TRY_HOLD_NAME_POSTGRES, Postgres),
        one("ANY_CLAIM_EXPIRED", ANY_CLAIM_EXPIRED, Both),
        one("SELECT_ATTEMPTS", SELECT_ATTEMPTS, Both),
        one("INSERT_INCIDENT", INSERT_INCIDENT, Both),
        one("SELECT_INCIDENT", SELECT_INCIDENT, Both),
        one("LIST_INCIDENTS", LIST_INCIDENTS, Both),
        one("RECIPIENTS", RECIPIENTS, Both),
        one("UPDATE_INCIDENT", UPDATE_INCIDENT, Both),
        one("INSERT_INCIDENT_UPDATE", INSERT_INCIDENT_UPDATE, Both),
        one("CLOSE_INCIDENT", CLOSE_INCIDENT, Both),
        one("MAINTENANCES_DUE", MAINTENANCES_DUE, Both),
        one("START_MAINTENANCE", START_MAINTENANCE, Both),
        one("RELEASE_ANNOUNCEMENTS", RELEASE_ANNOUNCEMENTS, Both),
        one("WITHDRAW_ANNOUNCEMENTS", WITHDRAW_ANNOUNCEMENTS, Both),
        one("APPLIED_MIGRATIONS", APPLIED_MIGRATIONS, Both),
        one("TOTAL_CHANGES_SQLITE", TOTAL_CHANGES_SQLITE, Sqlite),
        one("ONE_ACCOUNT", ONE_ACCOUNT, Both),
        built(
            "CONTACTS_OF_ACCOUNTS",
            format!(
                "{CONTACTS_OF_ACCOUNTS}{} ORDER BY id",
                sqlite_in("account_id", 1)
            ),
            Sqlite,
        ),
        built(
            "CONTACTS_OF_ACCOUNTS",
            format!(
                "{CONTACTS_OF_ACCOUNTS}{} ORDER BY id",
                pg_in("account_id", 1)
            ),
            Postgres,
        ),
        built(
            "ACCOUNT_STAGES",
            format!("{ACCOUNT_STAGES}{}", sqlite_in("account_id", 1)),
            Sqlite,
        ),
        built(
            "ACCOUNT_STAGES",
            format!("{ACCOUNT_STAGES}{}", pg_in("account_id", 1)),
            Postgres,
        ),
        built(
            "ACCOUNT_MESSAGES",
            format!("{ACCOUNT_MESSAGES}{}", sqlite_in("account_id", 1)),
            Sqlite,
        ),
        built(
            "ACCOUNT_MESSAGES",
            format!("{ACCOUNT_MESSAGES}{}", pg_in("account_id", 1)),
            Postgres,
        ),
        built(
            "ACCOUNT_EVENTS",
            format!("{ACCOUNT_EVENTS}{}", sqlite_in("c.account_id", 1)),
            Sqlite,
        ),
        built(
            "ACCOUNT_EVENTS",
            format!("{ACCOUNT_EVENTS}{}", pg_in("c.account_id", 1)),
            Postgres,
        ),
        built(
            "ACCOUNTS_OF",
            format!("{ACCOUNTS_OF}{}", sqlite_in("a.id", 1)),
            Sqlite,
        ),
        built(
            "ACCOUNTS_OF",
            format!("{ACCOUNTS_OF}{}", pg_in("a.id", 1)),
            Postgres,
        ),
        built(
            "RESPONSES_FROM+RESPONSES_ORDER",
            format!(
                "{RESPONSES_FROM}{}{RESPONSES_ORDER}",
                sqlite_in("customer_id", 1)
            ),
            Sqlite,
        ),
        built(
            "RESPONSES_FROM+RESPONSES_ORDER",
            format!(
                "{RESPONSES_FROM}{}{RESPONSES_ORDER}",
                pg_in("customer_id", 1)
            ),
            Postgres,
        ),
        built(
            "MESSAGES_OF_CUSTOMERS+MESSAGES_ORDER",
            format!(
                "{MESSAGES_OF_CUSTOMERS}{}{MESSAGES_ORDER}",
                sqlite_in("customer_id", 1)
            ),
            Sqlite,
        ),
        built(
            "MESSAGES_OF_CUSTOMERS+MESSAGES_ORDER",
            format!(
                "{MESSAGES_OF_CUSTOMERS}{}{MESSAGES_ORDER}",
                pg_in("customer_id", 1)
            ),
            Postgres,
        ),
        one("ROLES_HELD", ROLES_HELD, Both),
        one("CALENDARS_NAMED", CALENDARS_NAMED, Both),
        one("ANY_ACCOUNT", ANY_ACCOUNT, Both),
        built(
            "SURVEY_ANSWERS_FROM+SURVEY_ANSWERS_ORDER",
            format!(
                "{SURVEY_ANSWERS_FROM}{}{SURVEY_ANSWERS_ORDER}",
                sqlite_in("customer_id", 1)
            ),
            Sqlite,
        ),
        built(
            "SURVEY_ANSWERS_FROM+SURVEY_ANSWERS_ORDER",
            format!(
                "{SURVEY_ANSWERS_FROM}{}{SURVEY_ANSWERS_ORDER}",
                pg_in("customer_id", 1)
            ),
            Postgres,
        ),
        one("ACCOUNTS_PAGE", ACCOUNTS_PAGE, Both),
        one("CONTACTS_OF", CONTACTS_OF, Both),
        built(
            "INSERT_ACCOUNTS+REPLACE_ACCOUNT+ACCOUNT_MARK_SQLITE",
            format!(
                "{INSERT_ACCOUNTS}VALUES {}{REPLACE_ACCOUNT}{ACCOUNT_MARK_SQLITE}",
                row(1, 12)
            ),
            Sqlite,
        ),
        built(
            "INSERT_ACCOUNTS+REPLACE_ACCOUNT+ACCOUNT_MARK_POSTGRES",
            format!(
                "{INSERT_ACCOUNTS}VALUES {}{REPLACE_ACCOUNT}{ACCOUNT_MARK_POSTGRES}",
                row(1, 12)
            ),
            Postgres,
        ),
        one("REPLAN_ACCOUNTS_SQLITE", REPLAN_ACCOUNTS_SQLITE, Sqlite),
        one(
            "REPLAN_ACCOUNTS_POSTGRES",
            REPLAN_ACCOUNTS_POSTGRES,
            Postgres,
        ),
        one("ACCOUNTS_DUE", ACCOUNTS_DUE, Both),
        one("PLANNED_ACCOUNT", PLANNED_ACCOUNT, Both),
        one("SUPERSEDE_ACCOUNT_WAITING", SUPERSEDE_ACCOUNT_WAITING, Both),
        built(
            "UNCLAIM",
            format!("{UNCLAIM}{}", sqlite_in("message_id", 1)),
            Sqlite,
        ),
        built(
            "UNCLAIM",
            format!("{UNCLAIM}{}", pg_in("message_id", 1)),
            Postgres,
        ),
        built(
            "INSERT_ACCOUNT_STAGE_CHANGES",
            format!("{INSERT_ACCOUNT_STAGE_CHANGES}VALUES {}", row(1, 4)),
            Both,
        ),
        built(
            "SET_ACCOUNT_PLAN_AT+ACCOUNT_MARK_SQLITE",
            format!(
                "{SET_ACCOUNT_PLAN_AT}{ACCOUNT_MARK_SQLITE} WHERE {}",
                sqlite_in("id", 1)
            ),
            Sqlite,
        ),
        built(
            "SET_ACCOUNT_PLAN_AT+ACCOUNT_MARK_POSTGRES",
            format!(
                "{SET_ACCOUNT_PLAN_AT}{ACCOUNT_MARK_POSTGRES} WHERE {}",
                pg_in("id", 1)
            ),
            Postgres,
        ),
        built(
            "SET_ACCOUNT_PLAN_AT+ACCOUNT_MARK_SQLITE+ACCOUNTS_OF_CUSTOMERS",
            format!(
                "{SET_ACCOUNT_PLAN_AT}{ACCOUNT_MARK_SQLITE}{ACCOUNTS_OF_CUSTOMERS}{})",
                sqlite_in("id", 1)
            ),
            Sqlite,
        ),
        built(
            "SET_ACCOUNT_PLAN_AT+ACCOUNT_MARK_POSTGRES+ACCOUNTS_OF_CUSTOMERS",
            format!(
                "{SET_ACCOUNT_PLAN_AT}{ACCOUNT_MARK_POSTGRES}{ACCOUNTS_OF_CUSTOMERS}{})",
                pg_in("id", 1)
            ),
            Postgres,
        ),
        built(
            "INSERT_NAMED_ACCOUNTS+KEEP_ACCOUNT",
            format!("{INSERT_NAMED_ACCOUNTS}VALUES {}{KEEP_ACCOUNT}", row(1, 3)),
            Both,
        ),
        built(
            "KNOWN_ACCOUNTS",
            format!("{KNOWN_ACCOUNTS}{}", sqlite_in("id", 1)),
            Sqlite,
        ),
        built(
            "KNOWN_ACCOUNTS",
            format!("{KNOWN_ACCOUNTS}{}", pg_in("id", 1)),
            Postgres,
        ),
        built(
            "SET_PLAN_AT+MARK_SQLITE",
            format!(
                "{SET_PLAN_AT}{MARK_SQLITE} WHERE {}",
                sqlite_in("account_id", 1)
            ),
            Sqlite,
        ),
        built(
            "SET_PLAN_AT+MARK_POSTGRES",
            format!(
                "{SET_PLAN_AT}{MARK_POSTGRES} WHERE {}",
                pg_in("account_id", 1)
            ),
            Postgres,
        ),
        built(
            "INSERT_CUSTOMERS+REPLACE_CUSTOMER+MARK_SQLITE",
            format!(
                "{INSERT_CUSTOMERS}VALUES {}{REPLACE_CUSTOMER}{MARK_SQLITE}",
                row(1, 18)
            ),
            Sqlite,
        ),
        one(
            "INSERT_NEW_CUSTOMERS_POSTGRES",
            INSERT_NEW_CUSTOMERS_POSTGRES,
            Postgres,
        ),
        one(
            "STORED_CUSTOMERS_POSTGRES",
            STORED_CUSTOMERS_POSTGRES,
            Postgres,
        ),
        built(
            "INSERT_CUSTOMERS+REPLACE_CUSTOMER+MARK_POSTGRES",
            format!(
                "{INSERT_CUSTOMERS}VALUES {}{REPLACE_CUSTOMER}{MARK_POSTGRES} RETURNING (xmax = 0)",
                row(1, 18)
            ),
            Postgres,
        ),
        built(
            "COUNT_CUSTOMERS_OF_SQLITE",
            format!("{COUNT_CUSTOMERS_OF_SQLITE}{}", sqlite_in("id", 1)),
            Sqlite,
        ),
        built(
            "INSERT_EVENTS+SKIP_KNOWN_EVENT",
            format!("{INSERT_EVENTS}VALUES {}{SKIP_KNOWN_EVENT}", row(1, 6)),
            Both,
        ),
        built(
            "SET_PLAN_AT+MARK_SQLITE",
            format!("{SET_PLAN_AT}{MARK_SQLITE} WHERE {}", sqlite_in("id", 1)),
            Sqlite,
        ),
        built(
            "SET_PLAN_AT+MARK_POSTGRES",
            format!("{SET_PLAN_AT}{MARK_POSTGRES} WHERE {}", pg_in("id", 1)),
            Postgres,
        ),
        built(
            "CUSTOMER_ZONES",
            format!("{CUSTOMER_ZONES}{}", sqlite_in("id", 1)),
            Sqlite,
        ),
        built(
            "CUSTOMER_ZONES",
            format!("{CUSTOMER_ZONES}{}", pg_in("id", 1)),
            Postgres,
        ),
        built(
            "HISTORY_EVENTS_SQLITE",
            format!("{HISTORY_EVENTS_SQLITE}{}", sqlite_in("customer_id", 1)),
            Sqlite,
        ),
        built(
            "HISTORY_STAGES_SQLITE",
            format!("{HISTORY_STAGES_SQLITE}{}", sqlite_in("customer_id", 1)),
            Sqlite,
        ),
        built(
            "HISTORY_MESSAGES_SQLITE",
            format!("{HISTORY_MESSAGES_SQLITE}{}", sqlite_in("customer_id", 1)),
            Sqlite,
        ),
        built(
            "PLANNED_CUSTOMERS_SQLITE+UPDATE_PLANNED_CUSTOMERS_SQLITE",
            format!(
                "{PLANNED_CUSTOMERS_SQLITE}VALUES {}) {UPDATE_PLANNED_CUSTOMERS_SQLITE}",
                row(1, 6)
            ),
            Sqlite,
        ),
        built(
            "INSERT_STAGE_CHANGES",
            format!("{INSERT_STAGE_CHANGES}VALUES {}", row(1, 4)),
            Sqlite,
        ),
        built(
            "INSERT_MESSAGES+SKIP_PLANNED",
            format!("{INSERT_MESSAGES}VALUES {}{SKIP_PLANNED}", row(1, 23)),
            Sqlite,
        ),
        built(
            "EXPIRE_SUPERSEDED_SQLITE+SUPERSEDE_WAITING_SQLITE",
            format!(
                "{EXPIRE_SUPERSEDED_SQLITE}$1, updated_at = $2 FROM (VALUES {}{SUPERSEDE_WAITING_SQLITE}",
                row(3, 4)
            ),
            Sqlite,
        ),
        built(
            "BEGIN_SENDING_SQLITE+CLAIMED_WAITING_SQLITE",
            format!(
                "{BEGIN_SENDING_SQLITE}$1{CLAIMED_WAITING_SQLITE}{} AND owner = $3) RETURNING id",
                sqlite_in("message_id", 2)
            ),
            Sqlite,
        ),
        built(
            "RENEW_CLAIMS_SQLITE+RENEW_CLAIMS_ENDING_SQLITE",
            format!(
                "{RENEW_CLAIMS_SQLITE}$1 WHERE {} AND owner = $3{RENEW_CLAIMS_ENDING_SQLITE}$4",
                sqlite_in("message_id", 2)
            ),
            Sqlite,
        ),
        built(
            "DROP_CLAIMS_SQLITE",
            format!(
                "{DROP_CLAIMS_SQLITE}{} AND owner = $2",
                sqlite_in("message_id", 1)
            ),
            Sqlite,
        ),
        built(
            "SETTLE_SQLITE+SETTLE_GUARD_SQLITE",
            format!(
                "{SETTLE_SQLITE}$1 FROM (VALUES {}) AS v WHERE messages.id = v.column1{SETTLE_GUARD_SQLITE}$10))",
                row(2, 8)
            ),
            Sqlite,
        ),
        built(
            "INSERT_ATTEMPTS",
            format!("{INSERT_ATTEMPTS}VALUES {}", row(1, 6)),
            Both,
        ),
        built(
            "CLAIMED_DETAILS_SQLITE",
            format!(
                "{CLAIMED_DETAILS_SQLITE}{} ORDER BY m.priority",
                sqlite_in("m.id", 1)
            ),
            Sqlite,
        ),
        built(
            "CLAIMED_DETAILS_SQLITE+QUEUED+QUEUED_ORDER",
            format!(
                "{CLAIMED_DETAILS_SQLITE}{QUEUED}{}{QUEUED_ORDER}",
                sqlite_in("m.customer_id", 1)
            ),
            Sqlite,
        ),
        built(
            "CLAIMED_DETAILS_POSTGRES",
            format!(
                "{CLAIMED_DETAILS_POSTGRES}{} ORDER BY m.priority",
                pg_in("m.id", 1)
            ),
            Postgres,
        ),
        built(
            "CLAIMED_DETAILS_POSTGRES+QUEUED+QUEUED_ORDER",
            format!(
                "{CLAIMED_DETAILS_POSTGRES}{QUEUED}{}{QUEUED_ORDER}",
                pg_in("m.customer_id", 1)
            ),
            Postgres,
        ),
        built(
            "SENT_TO",
            format!(
                "{SENT_TO}{} AND COALESCE(sent_at, updated_at) > $2",
                sqlite_in("customer_id", 1)
            ),
            Sqlite,
        ),
        built(
            "INSERT_AFFECTED+SKIP_AFFECTED",
            format!("{INSERT_AFFECTED}VALUES {}{SKIP_AFFECTED}", row(1, 2)),
            Both,
        ),
        built(
            "QUIET",
            format!("{QUIET}{}", pg_in("ic.customer_id", 1)),
            Postgres,
        ),
        built(
            "QUIET",
            format!("{QUIET}{}", sqlite_in("ic.customer_id", 1)),
            Sqlite,
        ),
        one("TIDY_POSTGRES", TIDY_POSTGRES, Postgres),
        one(
            "NO_WAIT_FOR_DISK_POSTGRES",
            NO_WAIT_FOR_DISK_POSTGRES,
            Postgres,
        ),
        one("ANALYZE_POSTGRES", ANALYZE_POSTGRES, Postgres),
    ];
    // Sent as one simple query; each of its commands is prepared alone.
    for command in KEEP_NAME_ALIVE_POSTGRES.split(';') {
        all.push(built(
            "KEEP_NAME_ALIVE_POSTGRES",
            command.to_owned(),
            Postgres,
        ));
    }
    for dialect in [Dialect::Sqlite, Dialect::Postgres] {
        // Every kind of prefilter, each column.
        let mut parts: Vec<Prefilter> = Column::ALL
            .into_iter()
            .map(|c| Prefilter::Compare(c, Op::Eq, Literal::Text("x".into())))
            .collect();
        parts.push(Prefilter::Compare(Column::Health, Op::Lt, Literal::Int(50)));
        parts.push(Prefilter::OneOf(
            Column::Plan,
            vec![Literal::Text("pro".into())],
        ));
        parts.push(Prefilter::AttributeIs("tier".into(), "gold".into()));
        parts.push(Prefilter::AttributeHolds("tags".into(), "beta".into()));
        let filter = Prefilter::All(vec![Prefilter::Any(parts)]);
        let runs = match dialect {
            Dialect::Sqlite => Sqlite,
            Dialect::Postgres => Postgres,
        };
        all.push(built(
            "customers_page",
            customers_page(Some(&filter), dialect).0,
            runs,
        ));
    }
    all.extend(rollups);
    all
}

#[test]
fn every_statement_of_the_store_is_named() {
    let named = named();
    let parts: Vec<&str> = named.iter().flat_map(|n| n.name.split('+')).collect();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/store/sql.rs");
    let source = std::fs::read_to_string(path).unwrap();
    let consts: Vec<&str> = source
        .lines()
        .filter_map(|line| line.strip_prefix("pub const "))
        .filter_map(|rest| rest.split_once(": &str"))
        .map(|(name, _)| name)
        .collect();
    assert!(consts.len() > 60, "the constants were read: {consts:?}");
    let missing: Vec<&&str> = consts.iter().filter(|n| !parts.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "add these to `named()` so that each is prepared on its databases: {missing:?}"
    );
}

fn account_id(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

fn account(id: &str) -> AccountRecord {
    AccountRecord {
        id: account_id(id),
        name: format!("{id} Inc."),
        plan: "enterprise".into(),
        renewal_at: Some(Utc.timestamp_millis_opt(1_800_000_000_123).unwrap()),
        health: Some(64),
        owner: Some("maria".into()),
        attributes: json!({"seats": 40, "region": "eu"})
            .as_object()
            .unwrap()
            .clone(),
        availability: Availability {
            holidays: Some("de".into()),
            quiet_until: Some(Utc.timestamp_millis_opt(1_800_000_000_456).unwrap()),
        },
    }
}

fn roles(names: &[&str]) -> Roles {
    let declared: Vec<String> = tend::domain::account::DEFAULT_ROLES
        .iter()
        .map(|r| r.to_string())
        .collect();
    Roles::parse(names.iter().copied(), &declared).unwrap()
}

fn contact(id: &str, of: &str, holds: &[&str]) -> CustomerRecord {
    let mut c = customer(id);
    c.account_id = Some(account_id(of));
    c.roles = roles(holds);
    c
}

/// Ids sort byte by byte on both stores (`-` and digits, then capitals,
/// then `_`, then lower case), whatever the server's collation: the test
/// databases on PostgreSQL sort text by a language's rules, which would put
/// `acme` before `Beta`. Pages that continue after an id see the same order.
async fn ids_are_ordered_byte_by_byte(store: &Db) {
    let ids = ["b", "Beta", "acme", "a-b", "a_b", "a1", "Zeta", "ab"];
    let accounts: Vec<AccountRecord> = ids.iter().map(|id| account(id)).collect();
    store.upsert_accounts(&accounts, t0()).await.unwrap();
    let contacts: Vec<CustomerRecord> = ids.iter().map(|id| contact(id, "acme", &[])).collect();
    store.upsert_customers(&contacts, t0()).await.unwrap();
    let mut expected: Vec<&str> = ids.to_vec();
    expected.sort_unstable();
    assert_eq!(
        expected,
        ["Beta", "Zeta", "a-b", "a1", "a_b", "ab", "acme", "b"]
    );

    let page = |after: Option<&'static str>| async move {
        let after = after.map(account_id);
        store
            .accounts_page(after.as_ref(), 3)
            .await
            .unwrap()
            .iter()
            .map(|a| a.record.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(page(None).await, ["Beta", "Zeta", "a-b"]);
    assert_eq!(page(Some("a-b")).await, ["a1", "a_b", "ab"]);
    assert_eq!(page(Some("ab")).await, ["acme", "b"]);
    assert_eq!(contact_ids(store, "acme").await, expected);
}

/// The ids of an account's contacts, as the store lists them.
async fn contact_ids(store: &Db, account: &str) -> Vec<String> {
    store
        .contacts_of(&account_id(account))
        .await
        .unwrap()
        .iter()
        .map(|c| c.record.id.to_string())
        .collect()
}

async fn accounts_round_trip_and_keep_their_stage(store: &Db) {
    let acme = account("acme");
    let written = store
        .upsert_accounts(&[acme.clone(), account("globex"), acme.clone()], t0())
        .await
        .unwrap();
    assert_eq!(
        written,
        WriteOutcome {
            inserted: 2,
            existing: 1
        }
    );
    let stored = store.account(&acme.id).await.unwrap().expect("stored");
    assert_eq!(stored.record, acme);
    assert_eq!(stored.created_at, t0());
    assert_eq!(stored.contacts, 0);
    let mut renamed = acme.clone();
    renamed.name = "Acme Corporation".into();
    renamed.owner = None;
    renamed.health = None;
    renamed.availability = Availability::default();
    let later = t0() + Duration::days(1);
    store
        .upsert_accounts(&[renamed.clone()], later)
        .await
        .unwrap();
    let stored = store.account(&acme.id).await.unwrap().unwrap();
    assert_eq!(stored.record, renamed);
    assert_eq!(stored.created_at, t0(), "first seen stays");
    assert_eq!(stored.updated_at, later);
    assert!(
        store
            .account(&account_id("initech"))
            .await
            .unwrap()
            .is_none()
    );
    let page: Vec<String> = store
        .accounts_page(None, 10)
        .await
        .unwrap()
        .iter()
        .map(|a| a.record.id.to_string())
        .collect();
    assert_eq!(page, ["acme", "globex"]);
    let after: Vec<String> = store
        .accounts_page(Some(&account_id("acme")), 10)
        .await
        .unwrap()
        .iter()
        .map(|a| a.record.id.to_string())
        .collect();
    assert_eq!(after, ["globex"]);
}

/// Every read of a customer brings what their account says of their
/// calendar and quiet period, so delivery, planning and the forecast
/// decide alike; their own record, read beside it, is kept apart.
async fn a_contact_is_read_with_their_accounts_availability(store: &Db) {
    let acme = account("acme");
    store
        .upsert_accounts(std::slice::from_ref(&acme), t0())
        .await
        .unwrap();
    let mut bo = contact("bo", "acme", &[]);
    bo.availability.holidays = Some("us".into());
    store
        .upsert_customers(&[contact("ana", "acme", &[]), bo, customer("solo")], t0())
        .await
        .unwrap();
    let expected = |who: &str| match who {
        "solo" => (Availability::default(), Availability::default()),
        "bo" => (
            Availability {
                holidays: Some("us".into()),
                quiet_until: None,
            },
            Availability {
                holidays: Some("us".into()),
                ..acme.availability.clone()
            },
        ),
        _ => (Availability::default(), acme.availability.clone()),
    };
    let check = |how: &str, c: &tend::domain::customer::Customer| {
        let who = c.record.id.as_str();
        let (own, applies) = expected(who);
        assert_eq!(c.record.availability, own, "{how}: {who}'s own");
        assert_eq!(
            c.account_availability,
            if who == "solo" {
                Availability::default()
            } else {
                acme.availability.clone()
            },
            "{how}: {who}'s account's"
        );
        assert_eq!(c.availability(), applies, "{how}: what applies to {who}");
    };
    for who in ["ana", "bo", "solo"] {
        check(
            "customer",
            &store.customer(&id(who)).await.unwrap().unwrap(),
        );
    }
    let mut named: Vec<String> = store.calendars_named().await.unwrap().into_iter().collect();
    named.sort();
    assert_eq!(named, ["de", "us"], "the account's and Bo's own");
    for c in store.customers_page(None, 10, None).await.unwrap() {
        check("customers_page", &c);
    }
    for c in store.contacts_of(&account_id("acme")).await.unwrap() {
        check("contacts_of", &c);
    }
    let (due, _) = store
        .customers_due(t0() + Duration::days(1), &DueCursor::start(), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 3);
    for (c, _) in &due {
        check("customers_due", c);
    }
    plan_messages(
        store,
        &[
            message("ana", "welcome", "signup_at"),
            message("solo", "welcome", "signup_at"),
        ],
        t0(),
    )
    .await
    .unwrap();
    let now = t0() + Duration::hours(2);
    let claimed = store
        .claim("w", now, now + Duration::minutes(10), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    for m in &claimed {
        check("claim", &m.customer);
    }
}

async fn a_contact_naming_an_unknown_account_creates_it(store: &Db) {
    store
        .upsert_accounts(&[account("acme")], t0())
        .await
        .unwrap();
    let known = store
        .known_accounts(&[account_id("acme"), account_id("initech")])
        .await
        .unwrap();
    assert_eq!(known.into_iter().collect::<Vec<_>>(), [account_id("acme")]);
    store
        .upsert_customers(
            &[
                contact("ana", "initech", &["billing"]),
                contact("bo", "acme", &[]),
                customer("solo"),
            ],
            t0(),
        )
        .await
        .unwrap();
    let read = store
        .accounts_of(&[
            account_id("initech"),
            account_id("acme"),
            account_id("nope"),
        ])
        .await
        .unwrap();
    let mut ids: Vec<&str> = read.keys().map(|a| a.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["acme", "initech"]);
    assert_eq!(read[&account_id("initech")].contacts, 1);
    let initech = store
        .account(&account_id("initech"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        initech.record,
        AccountRecord::only_id(account_id("initech"))
    );
    assert_eq!(initech.contacts, 1);
    let acme = store.account(&account_id("acme")).await.unwrap().unwrap();
    assert_eq!(
        acme.record,
        account("acme"),
        "a contact leaves its account alone"
    );
    let solo = store.customer(&id("solo")).await.unwrap().unwrap();
    assert_eq!(solo.record.account_id, None);
    assert!(store.account(&account_id("solo")).await.unwrap().is_none());
}

async fn an_account_lists_its_contacts_with_their_roles(store: &Db) {
    store
        .upsert_accounts(&[account("acme")], t0())
        .await
        .unwrap();
    let ana = contact("ana", "acme", &["billing", "admin"]);
    let bo = contact("bo", "acme", &["technical"]);
    store
        .upsert_customers(
            &[bo.clone(), ana.clone(), contact("cy", "other", &[])],
            t0(),
        )
        .await
        .unwrap();
    let contacts = store.contacts_of(&account_id("acme")).await.unwrap();
    let records: Vec<&CustomerRecord> = contacts.iter().map(|c| &c.record).collect();
    assert_eq!(records, [&ana, &bo]);
    let many = store
        .contacts_of_accounts(&[account_id("acme"), account_id("other"), account_id("none")])
        .await
        .unwrap();
    let ids = |of: &str| -> Vec<String> {
        many[&account_id(of)]
            .iter()
            .map(|c| c.record.id.to_string())
            .collect()
    };
    assert_eq!(
        (ids("acme"), ids("other")),
        (
            vec!["ana".to_owned(), "bo".to_owned()],
            vec!["cy".to_owned()]
        )
    );
    assert!(!many.contains_key(&account_id("none")));
    assert_eq!(contacts[0].record.roles.names(), ["billing", "admin"]);
    let mut held: Vec<String> = store.roles_held().await.unwrap().into_iter().collect();
    held.sort();
    assert_eq!(held, ["admin", "billing", "technical"]);
    assert_eq!(
        store
            .account(&account_id("acme"))
            .await
            .unwrap()
            .unwrap()
            .contacts,
        2
    );
    // A contact who moves leaves the account; one who loses every role
    // keeps none.
    let mut moved = ana.clone();
    moved.account_id = Some(account_id("other"));
    moved.roles = Roles::default();
    store
        .upsert_customers(&[moved.clone()], t0())
        .await
        .unwrap();
    assert_eq!(contact_ids(store, "acme").await, ["bo"]);
    assert_eq!(
        store.customer(&id("ana")).await.unwrap().unwrap().record,
        moved
    );
}

async fn a_changed_account_has_its_contacts_planned_again(store: &Db) {
    store
        .upsert_accounts(&[account("acme")], t0())
        .await
        .unwrap();
    store
        .upsert_customers(&[contact("ana", "acme", &[]), customer("solo")], t0())
        .await
        .unwrap();
    let far = t0() + Duration::days(30);
    set_next(store, &[(id("ana"), far), (id("solo"), far)])
        .await
        .unwrap();
    assert!(due_ids(store, t0(), 10).await.is_empty());
    store
        .upsert_accounts(&[account("acme")], t0())
        .await
        .unwrap();
    assert_eq!(due_ids(store, t0(), 10).await, ["ana"]);
}

async fn accounts_due_now(store: &Db, now: DateTime<Utc>) -> Vec<(String, DateTime<Utc>)> {
    let (due, _) = store
        .accounts_due(now, &DueCursor::start(), 100)
        .await
        .unwrap();
    due.into_iter()
        .map(|(a, seen)| (a.record.id.to_string(), seen))
        .collect()
}

async fn accounts_are_planned_once_per_occurrence_and_contact(store: &Db) {
    store
        .upsert_accounts(&[account("acme")], t0())
        .await
        .unwrap();
    store
        .upsert_customers(
            &[
                contact("ana", "acme", &["billing"]),
                contact("bo", "acme", &["admin"]),
            ],
            t0(),
        )
        .await
        .unwrap();
    let due = accounts_due_now(store, t0()).await;
    assert_eq!(due.len(), 1, "{due:?}");
    let (_, seen) = due[0].clone();
    let planning = store.account_planning(&[account_id("acme")]).await.unwrap();
    let (contacts, history) = &planning[&account_id("acme")];
    let ids: Vec<&str> = contacts.iter().map(|c| c.record.id.as_str()).collect();
    assert_eq!(ids, ["ana", "bo"]);
    assert!(history.planned.is_empty() && history.stage_entries.is_empty());

    let mut renewal = message("ana", "renewal", "acme/renewal_at");
    renewal.key.playbook = "renewals".into();
    renewal.account_id = Some(account_id("acme"));
    let next = t0() + Duration::days(1);
    let plan = AccountPlanWrite {
        changes: vec![AccountStageChange {
            account_id: account_id("acme"),
            from: None,
            to: Some("renewal".into()),
            at: t0(),
        }],
        planned: vec![renewal.clone()],
        expired: Vec::new(),
        superseding: Vec::new(),
        next: vec![AccountNextCheck {
            id: account_id("acme"),
            at: next,
            seen,
            moved: Some((Some("renewal".into()), t0())),
        }],
    };
    assert_eq!(
        store.record_account_plan(&plan, t0()).await.unwrap(),
        recorded(1, 0)
    );
    // Again (a re-plan, a second instance): nothing new.
    let again = AccountPlanWrite {
        planned: vec![NewMessage {
            id: MessageId::new(),
            ..renewal.clone()
        }],
        ..AccountPlanWrite::default()
    };
    assert_eq!(
        store.record_account_plan(&again, t0()).await.unwrap(),
        recorded(0, 0)
    );
    let acme = store.account(&account_id("acme")).await.unwrap().unwrap();
    assert_eq!(acme.stage.as_deref(), Some("renewal"));
    assert_eq!(acme.stage_entered_at, Some(t0()));
    assert!(
        accounts_due_now(store, t0()).await.is_empty(),
        "next looked at tomorrow"
    );
    let planning = store.account_planning(&[account_id("acme")]).await.unwrap();
    let (_, history) = &planning[&account_id("acme")];
    let key = renewal.key.clone();
    assert!(history.planned.contains(&key) && history.waiting.contains(&key));
    assert_eq!(history.stage_entries.len(), 1);
    assert_eq!(history.stage_entries[0].stage, "renewal");

    // A new contact, an event of a contact and a re-plan each mark it due.
    store
        .upsert_customers(&[contact("cy", "acme", &[])], t0())
        .await
        .unwrap();
    let read = accounts_due_now(store, t0()).await;
    assert_eq!(read.len(), 1);
    // A mark made while that page is planned is not lost.
    store
        .upsert_customers(&[contact("dan", "acme", &[])], t0())
        .await
        .unwrap();
    let stale = AccountPlanWrite {
        next: vec![AccountNextCheck {
            id: account_id("acme"),
            at: next,
            seen: read[0].1,
            moved: None,
        }],
        ..AccountPlanWrite::default()
    };
    store.record_account_plan(&stale, t0()).await.unwrap();
    let due = accounts_due_now(store, t0()).await;
    assert_eq!(due.len(), 1, "the mark stands");
    // A stage move read before the mark is written all the same: its
    // change and messages are recorded beside it.
    let moved = AccountPlanWrite {
        next: vec![AccountNextCheck {
            id: account_id("acme"),
            at: next,
            seen: read[0].1,
            moved: Some((Some("at_risk".into()), t0())),
        }],
        ..AccountPlanWrite::default()
    };
    store.record_account_plan(&moved, t0()).await.unwrap();
    let acme = store.account(&account_id("acme")).await.unwrap().unwrap();
    assert_eq!(acme.stage.as_deref(), Some("at_risk"));
    assert_eq!(
        accounts_due_now(store, t0()).await,
        due,
        "and the mark still stands"
    );
    let settle = |seen| AccountPlanWrite {
        next: vec![AccountNextCheck {
            id: account_id("acme"),
            at: next,
            seen,
            moved: None,
        }],
        ..AccountPlanWrite::default()
    };
    store
        .record_account_plan(&settle(due[0].1), t0())
        .await
        .unwrap();
    assert!(accounts_due_now(store, t0()).await.is_empty());
    store
        .insert_events(&[event("bo", Some("e-1"), "login")], t0())
        .await
        .unwrap();
    let due = accounts_due_now(store, t0()).await;
    assert_eq!(due.len(), 1, "an event of a contact");
    let planning = store.account_planning(&[account_id("acme")]).await.unwrap();
    assert_eq!(planning[&account_id("acme")].1.events.len(), 1);
    store
        .record_account_plan(&settle(due[0].1), t0())
        .await
        .unwrap();
    store.replan_all("another fingerprint").await.unwrap();
    assert_eq!(accounts_due_now(store, t0()).await.len(), 1, "a re-plan");
}

async fn the_report_rolls_up_by_account_owner_plan_and_stage(store: &Db) {
    use tend::domain::report::Grouping;
    let mut acme = account("acme");
    acme.plan = "enterprise".into();
    store.upsert_accounts(&[acme], t0()).await.unwrap();
    let mut solo = customer("solo");
    solo.plan = "free".into();
    store
        .upsert_customers(
            &[
                contact("ana", "acme", &["billing"]),
                contact("bo", "acme", &[]),
                solo,
            ],
            t0(),
        )
        .await
        .unwrap();
    let mut ana = message("ana", "welcome", "signup_at");
    ana.survey = Some(Survey::Nps);
    let bo = message("bo", "welcome", "signup_at");
    let solo_msg = message("solo", "welcome", "signup_at");
    plan_messages(store, &[ana.clone(), bo, solo_msg], t0())
        .await
        .unwrap();
    let now = t0() + Duration::hours(2);
    let claimed = store
        .claim("w", now, now + Duration::minutes(10), 10)
        .await
        .unwrap();
    let ids: Vec<MessageId> = claimed.iter().map(|m| m.id).collect();
    store
        .begin_sending(
            "w",
            &ids,
            now,
            now + Duration::minutes(10),
            now + Duration::minutes(10),
        )
        .await
        .unwrap();
    let settles: Vec<Settle> = claimed
        .iter()
        .map(|m| Settle {
            sent_at: Some(now),
            reason: None,
            ..Settle::end(m, Status::Sent, String::new())
        })
        .collect();
    store.settle("w", &settles, now).await.unwrap();
    store
        .record_response(
            ana.id,
            &NewResponse {
                kind: ResponseKind::Survey,
                value: Some("10".into()),
                comment: None,
                source: Source::SurveyPage,
                replace: true,
            },
            now,
        )
        .await
        .unwrap();
    let by = |grouping| async move {
        store
            .report_by(grouping, DateTime::UNIX_EPOCH)
            .await
            .unwrap()
            .into_iter()
            .map(|(group, counts)| {
                let f = tend::domain::report::GroupFigures::from_counts(group, &counts);
                (f.group, f.sent, f.responses, f.nps.responses)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        by(Grouping::Account).await,
        [("acme".to_owned(), 2, 1, 1), ("solo".to_owned(), 1, 0, 0)]
    );
    assert_eq!(
        by(Grouping::Owner).await,
        [(String::new(), 1, 0, 0), ("maria".to_owned(), 2, 1, 1)]
    );
    assert_eq!(
        by(Grouping::Plan).await,
        [
            ("enterprise".to_owned(), 2, 1, 1),
            ("free".to_owned(), 1, 0, 0)
        ]
    );
    assert_eq!(by(Grouping::Stage).await, [(String::new(), 3, 1, 1)]);
    let from_ana = store.responses_from(&[id("ana")]).await.unwrap();
    assert_eq!(from_ana.len(), 1);
    assert_eq!(
        (from_ana[0].kind.as_str(), from_ana[0].value.as_deref()),
        ("survey", Some("10"))
    );
    assert!(store.responses_from(&[id("bo")]).await.unwrap().is_empty());
    assert_eq!(
        store.responses_from(&[id("bo"), id("ana")]).await.unwrap(),
        from_ana
    );
    let answers = store.survey_answers_from(&[id("ana")]).await.unwrap();
    assert_eq!(answers, [(id("ana"), Survey::Nps, "10".to_owned(), now)]);
    assert!(
        store
            .survey_answers_from(&[id("bo")])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .survey_answers_from(&[id("bo"), id("ana"), id("nobody")])
            .await
            .unwrap(),
        answers
    );
    // Several customers' messages at once are each one's, oldest due first.
    let all = store.messages(&MessageFilter::default()).await.unwrap();
    let of = |who: &[&str]| -> Vec<String> {
        all.iter()
            .filter(|m| who.contains(&m.customer_id.as_str()))
            .map(|m| m.id.clone())
            .collect()
    };
    let read: Vec<String> = store
        .messages_of(&[id("ana"), id("bo")])
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(read, of(&["ana", "bo"]));
    assert!(!read.is_empty());
    assert!(store.messages_of(&[]).await.unwrap().is_empty());
}

/// A score given on the survey page, replacing any earlier one.
fn survey_answer(value: &str) -> NewResponse {
    NewResponse {
        kind: ResponseKind::Survey,
        value: Some(value.into()),
        comment: None,
        source: Source::SurveyPage,
        replace: true,
    }
}

/// A tracked link followed to `url`.
fn click(url: &str) -> NewResponse {
    NewResponse {
        kind: ResponseKind::Click,
        value: Some(url.into()),
        comment: None,
        source: Source::Link,
        replace: false,
    }
}

/// A survey answer to customer `a`'s welcome message.
async fn answer_a(store: &Db, value: &str) {
    let views = store.messages(&MessageFilter::default()).await.unwrap();
    let m = views
        .iter()
        .find(|v| v.customer_id == "a")
        .unwrap()
        .id
        .parse::<MessageId>()
        .unwrap();
    let answer = NewResponse {
        kind: ResponseKind::Survey,
        value: Some(value.into()),
        comment: Some("slow exports".into()),
        source: Source::SurveyPage,
        replace: true,
    };
    store.record_response(m, &answer, t0()).await.unwrap();
}

async fn signals_are_recorded_when_listened_for_and_routed_once(store: &Db) {
    welcome_a_and_b(store).await;
    answer_a(store, "3").await;
    let (from, none) = store.unrouted(100).await.unwrap();
    assert!(none.is_empty(), "nobody listens: nothing is recorded");

    store.listen(Interest::of(["response.*", "message.sent"]));
    answer_a(store, "4").await;
    let (from_again, signals) = store.unrouted(100).await.unwrap();
    assert_eq!(from_again, from);
    assert_eq!(signals.len(), 1, "{signals:?}");
    let s = &signals[0];
    assert_eq!(s.kind, "response.survey");
    assert!(s.id.starts_with("evt_"), "{}", s.id);
    assert_eq!(s.customer_id.as_deref(), Some("a"));
    assert_eq!(s.field("value"), Some("4"));
    assert_eq!(s.field("comment"), Some("slow exports"));
    assert_eq!(s.occurred_at, t0());
    assert_eq!(s.envelope()["type"], "response.survey");

    // Two instances route the same page: one wins, the other writes nothing.
    let note = |target: &str| NewNotification {
        signal_id: s.id.clone(),
        target: target.into(),
        channel: Channel::Webhook,
        recipient: "crm".into(),
        subject: None,
        reply_to: None,
        body: s.envelope().to_string(),
        customer_id: s.customer_id.clone(),
        dropped: None,
    };
    let notes = [note("webhook:crm")];
    let (won, lost) = tokio::join!(
        store.route(from, s.after, &notes, t0()),
        store.route(from, s.after, &notes, t0()),
    );
    assert!(won.unwrap() ^ lost.unwrap(), "exactly one routes");
    let (_, left) = store.unrouted(100).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    let targets = store.notification_targets().await.unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].backlog, 1, "routed once: {targets:?}");
    let backlogs = store.backlogs().await.unwrap();
    assert_eq!(backlogs.get("webhook:crm"), Some(&1), "{backlogs:?}");

    // A settled send and a stage change are signals too, in commit order.
    store.listen(Interest::of(["*"]));
    record_stages(
        store,
        &[StageChange {
            customer_id: id("b"),
            from: None,
            to: Some("onboarding".into()),
            at: t0(),
        }],
    )
    .await
    .unwrap();
    answer_a(store, "9").await;
    let (_, later) = store.unrouted(100).await.unwrap();
    let kinds: Vec<&str> = later.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["stage.changed", "response.survey"], "{later:?}");
    assert_eq!(later[0].field("to"), Some("onboarding"));
    assert!(later[0].after < later[1].after);
}

/// `n` notifications of one signal each for `target`.
async fn queue(store: &Db, target: &str, channel: Channel, n: usize) -> Vec<String> {
    let (from, _) = store.unrouted(1).await.unwrap();
    let notes: Vec<NewNotification> = (0..n)
        .map(|i| NewNotification {
            signal_id: format!("evt_{target}_{i}"),
            target: target.into(),
            channel,
            recipient: "r@example.com".into(),
            subject: Some(format!("subject {i}")),
            reply_to: None,
            body: format!("body {i}"),
            customer_id: None,
            dropped: None,
        })
        .collect();
    assert!(store.route(from, from, &notes, t0()).await.unwrap());
    notes.into_iter().map(|n| n.signal_id).collect()
}

async fn a_targets_queue_goes_in_order_and_to_one_claimant(store: &Db) {
    let hook = queue(store, "webhook:crm", Channel::Webhook, 3).await;
    let mail = queue(store, "alert:replies:maria@acme.example", Channel::Email, 2).await;
    let until = t0() + Duration::minutes(5);
    let a = store
        .claim_notifications("a", t0(), until, 2)
        .await
        .unwrap();
    let taken: Vec<&str> = a.iter().map(|n| n.signal_id.as_str()).collect();
    // The webhook's first two in order; mail one at a time.
    assert_eq!(taken.len(), 3, "{taken:?}");
    assert!(taken.contains(&mail[0].as_str()));
    let hooks: Vec<&str> = taken
        .iter()
        .copied()
        .filter(|t| t.contains("crm"))
        .collect();
    assert_eq!(hooks, [hook[0].as_str(), hook[1].as_str()]);
    let b = store
        .claim_notifications("b", t0(), until, 10)
        .await
        .unwrap();
    assert!(
        b.is_empty(),
        "another instance's queues are left alone: {b:?}"
    );

    let n = |sid: &str| a.iter().find(|n| n.signal_id == sid).unwrap().clone();
    store
        .settle_notification("a", &n(&hook[0]).id, &Outcome::Sent, t0())
        .await
        .unwrap();
    let retry = Outcome::Retry {
        at: t0() + Duration::seconds(5),
        error: "503".into(),
    };
    store
        .settle_notification("a", &n(&hook[1]).id, &retry, t0())
        .await
        .unwrap();
    store
        .settle_notification("a", &n(&mail[0]).id, &Outcome::Sent, t0())
        .await
        .unwrap();
    // The failed one heads its queue: nothing behind it jumps ahead.
    let now = store
        .claim_notifications("b", t0(), until, 10)
        .await
        .unwrap();
    let ids: Vec<&str> = now.iter().map(|n| n.signal_id.as_str()).collect();
    assert_eq!(ids, [mail[1].as_str()], "{ids:?}");
    let later = t0() + Duration::seconds(6);
    let next = store
        .claim_notifications("b", later, until, 10)
        .await
        .unwrap();
    let ids: Vec<&str> = next.iter().map(|n| n.signal_id.as_str()).collect();
    assert_eq!(ids, [hook[1].as_str(), hook[2].as_str()]);
    assert_eq!(next[0].attempts, 1);
    // Handing back what was not tried keeps the order.
    let back = vec![next[1].id.clone()];
    store
        .settle_notification("b", &next[0].id, &Outcome::Sent, later)
        .await
        .unwrap();
    store.release_notifications("b", &back).await.unwrap();
    let last = store
        .claim_notifications("a", later, until, 10)
        .await
        .unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].signal_id, hook[2]);
    let failed = Outcome::Failed {
        error: "410 Gone".into(),
    };
    store
        .settle_notification("a", &last[0].id, &failed, later)
        .await
        .unwrap();
    let targets = store.notification_targets().await.unwrap();
    let crm = targets.iter().find(|t| t.target == "webhook:crm").unwrap();
    assert_eq!((crm.backlog, crm.sent, crm.failed), (0, 2, 1), "{crm:?}");
    assert_eq!(crm.last_error.as_deref(), Some("410 Gone"));
    assert_eq!(crm.last_sent_at, Some(later));
    let alerts = targets
        .iter()
        .find(|t| t.target.starts_with("alert:"))
        .unwrap();
    assert_eq!((alerts.backlog, alerts.sent), (1, 1), "{alerts:?}");
}

async fn a_dead_instances_claims_retry_webhooks_and_leave_mail_unknown(store: &Db) {
    let hook = queue(store, "webhook:crm", Channel::Webhook, 1).await;
    queue(store, "alert:replies:maria@acme.example", Channel::Email, 1).await;
    let until = t0() + Duration::minutes(5);
    let claimed = store
        .claim_notifications("dead", t0(), until, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(
        store.recover_notifications(t0()).await.unwrap(),
        0,
        "leases hold"
    );
    let after = until + Duration::seconds(1);
    assert_eq!(store.recover_notifications(after).await.unwrap(), 2);
    let again = store
        .claim_notifications("live", after, after + Duration::minutes(5), 10)
        .await
        .unwrap();
    let ids: Vec<&str> = again.iter().map(|n| n.signal_id.as_str()).collect();
    assert_eq!(
        ids,
        [hook[0].as_str()],
        "the POST goes again; the mail may have gone"
    );
    let targets = store.notification_targets().await.unwrap();
    let mail = targets
        .iter()
        .find(|t| t.target.starts_with("alert:"))
        .unwrap();
    assert_eq!((mail.backlog, mail.unknown), (0, 1), "{mail:?}");
    // A settle from the dead instance changes nothing now.
    store
        .settle_notification("dead", &claimed[0].id, &Outcome::Sent, after)
        .await
        .unwrap();
    let crm = store.notification_targets().await.unwrap();
    let crm = crm.iter().find(|t| t.target == "webhook:crm").unwrap();
    assert_eq!((crm.backlog, crm.sent), (1, 0), "{crm:?}");
}

async fn settled_notifications_and_routed_signals_are_pruned(store: &Db) {
    welcome_a_and_b(store).await;
    store.listen(Interest::of(["response.*"]));
    answer_a(store, "8").await;
    let (from, signals) = store.unrouted(10).await.unwrap();
    let note = NewNotification {
        signal_id: signals[0].id.clone(),
        target: "webhook:crm".into(),
        channel: Channel::Webhook,
        recipient: "crm".into(),
        subject: None,
        reply_to: None,
        body: "{}".into(),
        customer_id: Some("a".into()),
        dropped: None,
    };
    assert!(
        store
            .route(from, signals[0].after, &[note], t0())
            .await
            .unwrap()
    );
    let later = t0() + Duration::days(40);
    assert_eq!(
        store.prune_signals(later).await.unwrap(),
        0,
        "a signal whose delivery waits is kept"
    );
    let claimed = store
        .claim_notifications("a", t0(), t0() + Duration::minutes(5), 1)
        .await
        .unwrap();
    store
        .settle_notification("a", &claimed[0].id, &Outcome::Sent, t0())
        .await
        .unwrap();
    assert_eq!(store.prune_signals(t0()).await.unwrap(), 0, "too recent");
    assert_eq!(store.prune_signals(later).await.unwrap(), 2);
    assert!(store.notification_targets().await.unwrap().is_empty());
}

/// PostgreSQL draws `seq` when a row is written, so a transaction that
/// began first may commit after a later one: routing must wait for it, not
/// step past its signal. (SQLite has one writer: commit order is `seq`
/// order, which the contract tests above rely on.)
#[tokio::test]
async fn routing_waits_for_a_slower_transaction_on_postgres() {
    use sqlx::Connection;
    let (pg, store) = migrated_postgres().await;
    let insert = "INSERT INTO signals (id, type, payload, occurred_at) \
                  VALUES ($1, 'stage.changed', '{}', now())";
    let mut slow = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    let mut tx = slow.begin().await.unwrap();
    sqlx::query(insert)
        .bind("evt_slow")
        .execute(&mut *tx)
        .await
        .unwrap();
    let mut fast = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    sqlx::query(insert)
        .bind("evt_fast")
        .execute(&mut fast)
        .await
        .unwrap();
    let (_, seen) = store.unrouted(10).await.unwrap();
    assert!(
        seen.is_empty(),
        "a signal committed after one still being written is not routed yet: {seen:?}"
    );
    tx.commit().await.unwrap();
    let (_, seen) = store.unrouted(10).await.unwrap();
    let ids: Vec<&str> = seen.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["evt_slow", "evt_fast"], "each once, by transaction");
    store.close().await;
    drop(slow);
    drop(fast);
}

/// Once a connection of the database at `url` waits for a lock, runs
/// `statement` (bound to `value`) in `tx`, closing a circle of waits. The
/// server undoes whichever of the two waited a second first: almost
/// always the other, which waited first; should it be `tx` instead, the
/// other goes ahead at once. `tx` commits unless it was undone.
async fn close_the_circle(
    url: &str,
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    statement: &'static str,
    value: &str,
) {
    use sqlx::Connection;
    let mut watch = sqlx::PgConnection::connect(url).await.unwrap();
    let waiting = "SELECT count(*) FROM pg_stat_activity \
                   WHERE datname = current_database() AND wait_event_type = 'Lock'";
    while sqlx::query_scalar::<_, i64>(waiting)
        .fetch_one(&mut watch)
        .await
        .unwrap()
        == 0
    {
        tokio::task::yield_now().await;
    }
    watch.close().await.unwrap();
    match sqlx::query(statement).bind(value).execute(&mut *tx).await {
        Ok(_) => tx.commit().await.unwrap(),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("40P01") => {
            tx.rollback().await.unwrap()
        }
        Err(e) => panic!("{e}"),
    }
}

/// A batch of events marks its customers; a writer that holds one of
/// them and then asks for another the batch holds deadlocks with it. PostgreSQL undoes the batch, which then goes in
/// again, whole, instead of failing the import or the API call.
#[tokio::test]
async fn events_undone_by_a_deadlock_go_in_again_on_postgres() {
    use sqlx::Connection;
    let (pg, store) = migrated_postgres().await;
    let people = [customer("a"), customer("b")];
    store.upsert_customers(&people, t0()).await.unwrap();
    let mut other = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    let mut tx = other.begin().await.unwrap();
    let touch = "UPDATE customers SET name = name WHERE id = $1";
    sqlx::query(touch)
        .bind("b")
        .execute(&mut *tx)
        .await
        .unwrap();
    let events = [event("a", None, "upgraded"), event("b", None, "upgraded")];
    // Once the batch holds a and waits for b, ask for a.
    let crossing = close_the_circle(&pg.url, tx, touch, "a");
    let (written, ()) = tokio::join!(store.insert_events(&events, t0()), crossing);
    assert_eq!(written.unwrap().inserted, 2, "both events, once");
    store.close().await;
    other.close().await.unwrap();
}

/// A settle and another writer that lock a message and a claim in the
/// other order (catch-up expires messages, then drops their claims)
/// deadlock now and then. PostgreSQL undoes the settle, which is then
/// recorded again: a send that went out is never left `sending`, to be
/// taken for unknown (and, with `resend_unknown`, sent twice).
#[tokio::test]
async fn a_settle_undone_by_a_deadlock_is_recorded_again_on_postgres() {
    use sqlx::Connection;
    let (pg, store) = migrated_postgres().await;
    let people = [customer("a"), customer("b")];
    store.upsert_customers(&people, t0()).await.unwrap();
    let welcomes = [
        message("a", "welcome", "signup_at"),
        message("b", "welcome", "signup_at"),
    ];
    plan_messages(&store, &welcomes, t0()).await.unwrap();
    let now = t0() + Duration::hours(1);
    let mut claimed = store
        .claim("d", now, now + Duration::minutes(10), 10)
        .await
        .unwrap();
    claimed.sort_by_key(|m| m.id.to_string());
    assert_eq!(claimed.len(), 2);
    let (first, second) = (claimed[0].id.to_string(), claimed[1].id.to_string());
    let mut other = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    let mut tx = other.begin().await.unwrap();
    sqlx::query("UPDATE messages SET updated_at = updated_at WHERE id = $1")
        .bind(&second)
        .execute(&mut *tx)
        .await
        .unwrap();
    let later = now + Duration::hours(12);
    let holds: Vec<Settle> = claimed
        .iter()
        .map(|m| Settle::hold(m, later, "outside the window".into()))
        .collect();
    // Once the settle holds the first claim and waits for the second
    // message, ask for the first claim.
    let lock = "SELECT 1 FROM claims WHERE message_id = $1 FOR UPDATE";
    let crossing = close_the_circle(&pg.url, tx, lock, &first);
    let (settled, ()) = tokio::join!(store.settle("d", &holds, now), crossing);
    settled.unwrap();
    let views = store.messages(&MessageFilter::default()).await.unwrap();
    for view in &views {
        assert_eq!(
            view.reason.as_deref(),
            Some("outside the window"),
            "{view:?}"
        );
    }
    store.close().await;
    other.close().await.unwrap();
}

/// A message expired while another instance held its claim stays
/// expired when that instance puts it back to wait. On PostgreSQL a claim
/// taken while catch-up's statement runs (or between a maintenance's
/// release of its announcements' claims and their withdrawal) survives
/// it: the statement's snapshot is older than the claim. This leaves the
/// store as that interleaving does, then settles.
#[tokio::test]
async fn a_message_expired_under_a_claim_is_not_put_back_on_postgres() {
    use sqlx::Connection;
    let (pg, store) = migrated_postgres().await;
    store
        .upsert_customers(&[customer("a")], t0())
        .await
        .unwrap();
    plan_messages(&store, &[message("a", "welcome", "signup_at")], t0())
        .await
        .unwrap();
    let now = t0() + Duration::hours(1);
    let claimed = store
        .claim("d", now, now + Duration::minutes(10), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let mut other = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    sqlx::query("UPDATE messages SET status = 'expired', reason = 'superseded' WHERE id = $1")
        .bind(claimed[0].id.to_string())
        .execute(&mut other)
        .await
        .unwrap();
    let hold = Settle::hold(
        &claimed[0],
        now + Duration::hours(12),
        "outside the window".into(),
    );
    store.settle("d", &[hold], now).await.unwrap();
    let views = store.messages(&MessageFilter::default()).await.unwrap();
    assert_eq!(views[0].status, "expired", "{views:?}");
    assert_eq!(views[0].reason.as_deref(), Some("superseded"));
    // Nor can it be claimed again: it is not waiting, and its claim is gone.
    let later = now + Duration::hours(13);
    let again = store.claim("e", later, later + Duration::minutes(10), 10);
    assert!(again.await.unwrap().is_empty());
    store.close().await;
    other.close().await.unwrap();
}

/// A page of messages on PostgreSQL stops short of rows committed after
/// a transaction of its database that is still running (it may commit
/// rows before them) and shows them once it ends, as pages of responses
/// do (`a_page_waits_for_a_slower_transaction_on_postgres`); one of
/// another database on the same server holds nothing back.
#[tokio::test]
async fn a_page_of_messages_waits_only_for_its_own_database_on_postgres() {
    use sqlx::Connection;
    let (pg, store) = migrated_postgres().await;
    let people = [customer("a"), customer("b")];
    store.upsert_customers(&people, t0()).await.unwrap();
    let take_an_id = "SELECT pg_current_xact_id()";
    let mut neighbour = sqlx::PgConnection::connect(&common::pg_admin_url())
        .await
        .unwrap();
    let mut elsewhere = neighbour.begin().await.unwrap();
    sqlx::query(take_an_id)
        .execute(&mut *elsewhere)
        .await
        .unwrap();
    plan_messages(&store, &[message("a", "welcome", "signup_at")], t0())
        .await
        .unwrap();
    let all = MessageFilter::default();
    let (planned, after_a) = read_messages(&store, &all, Position::default(), 10).await;
    assert_eq!(planned.len(), 1, "another database holds nothing back");

    let mut slow = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    let mut tx = slow.begin().await.unwrap();
    sqlx::query(take_an_id).execute(&mut *tx).await.unwrap();
    plan_messages(&store, &[message("b", "welcome", "signup_at")], t0())
        .await
        .unwrap();
    let (held, _) = read_messages(&store, &all, after_a, 10).await;
    assert!(
        held.is_empty(),
        "b, planned after a slower transaction, waits"
    );
    tx.commit().await.unwrap();
    let (shown, _) = read_messages(&store, &all, after_a, 10).await;
    assert_eq!(shown.len(), 1, "b, once the slower transaction ended");
    assert_ne!(shown, planned);
    elsewhere.rollback().await.unwrap();
    store.close().await;
    slow.close().await.unwrap();
    neighbour.close().await.unwrap();
}

/// Every row of a list, read `limit` at a time from `from` to the end:
/// (ids, the cursor after the last).
async fn read_messages(
    store: &Db,
    filter: &MessageFilter,
    from: Position,
    limit: u32,
) -> (Vec<String>, Position) {
    let mut ids = Vec::new();
    let mut at = from;
    loop {
        let page = store.messages_page(filter, at, limit).await.unwrap();
        assert!(page.data.len() <= limit as usize);
        ids.extend(page.data.iter().map(|m| m.id.clone()));
        at = Position::decode(&page.next_cursor).unwrap();
        if !page.has_more {
            return (ids, at);
        }
    }
}

async fn pages_of_messages_neither_skip_nor_repeat_while_more_are_planned(store: &Db) {
    let people: Vec<CustomerRecord> = ["a", "b", "c", "d"].into_iter().map(customer).collect();
    store.upsert_customers(&people, t0()).await.unwrap();
    let all = MessageFilter::default();
    plan_messages(store, &[message("a", "welcome", "signup_at")], t0())
        .await
        .unwrap();
    plan_messages(store, &[message("b", "welcome", "signup_at")], t0())
        .await
        .unwrap();
    let first = store
        .messages_page(&all, Position::default(), 1)
        .await
        .unwrap();
    assert_eq!(first.data.len(), 1);
    assert!(first.has_more);
    let mut seen = vec![first.data[0].id.clone()];
    // Planned between two pages: read after what was there.
    plan_messages(
        store,
        &[
            message("c", "welcome", "signup_at"),
            message("d", "welcome", "signup_at"),
        ],
        t0() + Duration::minutes(1),
    )
    .await
    .unwrap();
    let (rest, end) = read_messages(
        store,
        &all,
        Position::decode(&first.next_cursor).unwrap(),
        1,
    )
    .await;
    seen.extend(rest);
    let everything = store.messages(&all).await.unwrap();
    let customers: Vec<&str> = seen
        .iter()
        .map(|m| {
            let view = everything.iter().find(|v| &v.id == m).unwrap();
            view.customer_id.as_str()
        })
        .collect();
    assert_eq!(
        customers,
        ["a", "b", "c", "d"],
        "each once, in the order planned"
    );
    // A changed message keeps its place; a reader at the end sees nothing new.
    let (again, _) = read_messages(store, &all, end, 10).await;
    assert!(again.is_empty(), "nothing after the end: {again:?}");
    plan_messages(
        store,
        &[message("a", "tip", "signup_at")],
        t0() + Duration::minutes(2),
    )
    .await
    .unwrap();
    let (new, _) = read_messages(store, &all, end, 10).await;
    assert_eq!(
        new.len(),
        1,
        "a reader that kept the cursor gets only the new one"
    );
    // Filters apply within the order.
    let of_a = MessageFilter {
        customer: Some(id("a")),
        ..MessageFilter::default()
    };
    let (a, _) = read_messages(store, &of_a, Position::default(), 1).await;
    assert_eq!(a.len(), 2);
    let later = MessageFilter {
        since: Some(t0() + Duration::minutes(1)),
        ..MessageFilter::default()
    };
    let (recent, _) = read_messages(store, &later, Position::default(), 100).await;
    assert_eq!(
        recent.len(),
        3,
        "planned at or after the minute: c, d and a's tip"
    );
    let sent = MessageFilter {
        status: Some(Status::Sent),
        ..MessageFilter::default()
    };
    assert!(
        read_messages(store, &sent, Position::default(), 5)
            .await
            .0
            .is_empty()
    );
}

/// Short transactions in another database of the same server, one after
/// another on a few connections of their own, until stopped or dropped.
/// Each takes a transaction id and holds it a moment, so some are always
/// running, and some end while a page of this store is read.
struct BusyNeighbour {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<u64>>,
}

impl BusyNeighbour {
    /// Nothing on SQLite, whose file has no neighbours.
    fn beside(store: &Db) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = match store {
            Db::Sqlite(_) => Vec::new(),
            Db::Postgres(_) => (0..4u64)
                .map(|n| {
                    let stop = stop.clone();
                    std::thread::spawn(move || neighbour_writes(n, &stop))
                })
                .collect(),
        };
        Self { stop, threads }
    }

    /// Stops the neighbour: how many transactions it ran.
    fn stop(mut self) -> u64 {
        self.halt()
    }

    fn halt(&mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.threads
            .drain(..)
            .map(|t| t.join().unwrap_or_default())
            .sum()
    }
}

/// A test that fails mid-way stops its neighbour too, so the tests after
/// it do not share the server with four busy connections.
impl Drop for BusyNeighbour {
    fn drop(&mut self) {
        self.halt();
    }
}

/// One of the neighbour's connections, to the server's own `postgres`
/// database: holds each transaction 0–3 ms, a different time each.
fn neighbour_writes(n: u64, stop: &std::sync::atomic::AtomicBool) -> u64 {
    use sqlx::Connection;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&common::pg_admin_url())
            .await
            .unwrap();
        let mut ran = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let mut tx = conn.begin().await.unwrap();
            sqlx::query("SELECT pg_current_xact_id()")
                .execute(&mut *tx)
                .await
                .unwrap();
            let hold = (n * 7 + ran * 13) % 4;
            tokio::time::sleep(std::time::Duration::from_micros(hold * 750)).await;
            tx.commit().await.unwrap();
            ran += 1;
        }
        conn.close().await.unwrap();
        ran
    })
}

/// A page shows every row committed before it is read, however busy the
/// server's other databases are. On PostgreSQL a page leaves out the rows
/// of transactions still running in its database (so it never steps past
/// one that commits later); a neighbour's that ends while the page is read
/// must not be taken for one of them.
async fn a_page_shows_what_committed_before_it_while_a_neighbour_writes(store: &Db) {
    let [(m, _), _] = welcomes_to_a_and_b(store).await;
    let neighbour = BusyNeighbour::beside(store);
    let mut after = Position::default();
    for i in 0..300 {
        let link = format!("https://docs.acme.example/{i}");
        store.record_response(m, &click(&link), t0()).await.unwrap();
        let page = store
            .responses_page(DateTime::UNIX_EPOCH, after, 10)
            .await
            .unwrap();
        let values: Vec<_> = page.data.iter().map(|r| r.value.clone().unwrap()).collect();
        assert_eq!(
            values,
            [link],
            "read {i} shows the click committed before it"
        );
        after = Position::decode(&page.next_cursor).unwrap();
    }
    let ran = neighbour.stop();
    if matches!(store, Db::Postgres(_)) {
        assert!(ran > 100, "the neighbour was busy: {ran} transactions");
    }
}

/// An erasure and another instance's claim at once: either the claim
/// comes first and the erasure waits for the send (`Sending`), or the
/// erasure does and the claim finds only the stand-in's mail (suppressed).
/// Never both, or mail would go to an address erased a moment before.
async fn an_erasure_and_a_claim_at_once_never_both_go_ahead(store: &Db) {
    let now = t0() + Duration::hours(1);
    for round in 0..20 {
        let person = format!("p{round}");
        store
            .upsert_customers(&[customer(&person)], t0())
            .await
            .unwrap();
        plan_messages(store, &[message(&person, "welcome", "signup_at")], t0())
            .await
            .unwrap();
        let id = CustomerId::parse(&person).unwrap();
        let stand_in = CustomerId::parse(&format!("erased-{round}")).unwrap();
        let hash = format!("hash-{round}");
        let (erased, claimed) = tokio::join!(
            store.erase_customer(&id, &stand_in, &hash, now),
            store.claim("d", now, now + Duration::hours(1), 100),
        );
        // Claimed with the person's own record (their address): after the
        // erasure only their stand-in's, which nothing is sent to.
        let theirs = claimed.unwrap().iter().any(|m| m.customer.record.id == id);
        match erased.unwrap() {
            Erasure::Done => {
                assert!(!theirs, "round {round}: claimed as it was erased");
            }
            Erasure::Sending => {
                assert!(theirs, "round {round}: waits for no claim");
            }
            Erasure::Unknown => panic!("round {round}: the person was stored"),
        }
    }
}

/// An answer that arrives after its person was erased (a survey page
/// left open) is not kept: its comment is their own words, and their
/// stand-in keeps none.
async fn an_answer_to_an_erased_persons_mail_is_not_kept(store: &Db) {
    let [(m, _), _] = welcomes_to_a_and_b(store).await;
    let person = CustomerId::parse("a").unwrap();
    let stand_in = CustomerId::parse("erased-1").unwrap();
    let erased = store.erase_customer(&person, &stand_in, "hash", t0());
    assert_eq!(erased.await.unwrap(), Erasure::Done);
    let answer = NewResponse {
        kind: ResponseKind::Survey,
        value: Some("2".into()),
        comment: Some("Ana here: call me on +1 555 0100".into()),
        source: Source::SurveyPage,
        replace: true,
    };
    let recorded = store.record_response(m, &answer, t0()).await.unwrap();
    assert_eq!(recorded, None, "as for a message that is not there");
    let kept = store.responses(DateTime::UNIX_EPOCH).await.unwrap();
    assert!(kept.is_empty(), "{kept:?}");
}

/// A double click sends two answers to one survey at once: one is kept
/// (either), never both, so the score and its alerts count it once.
async fn of_two_answers_at_once_one_is_kept(store: &Db) {
    let [(m, _), _] = welcomes_to_a_and_b(store).await;
    let (low, high) = (survey_answer("3"), survey_answer("9"));
    for round in 0..20 {
        let (first, second) = tokio::join!(
            store.record_response(m, &low, t0()),
            store.record_response(m, &high, t0()),
        );
        first.unwrap();
        second.unwrap();
        let kept: Vec<_> = store
            .responses(DateTime::UNIX_EPOCH)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.kind == "survey")
            .filter_map(|r| r.value)
            .collect();
        assert_eq!(kept.len(), 1, "round {round}: {kept:?}");
    }
}

async fn pages_of_responses_neither_skip_nor_repeat_a_replaced_answer(store: &Db) {
    let [(m, _), _] = welcomes_to_a_and_b(store).await;
    let click = click("https://docs.acme.example");
    store.record_response(m, &click, t0()).await.unwrap();
    store
        .record_response(m, &survey_answer("3"), t0())
        .await
        .unwrap();
    let page = store
        .responses_page(DateTime::UNIX_EPOCH, Position::default(), 10)
        .await
        .unwrap();
    let values: Vec<_> = page.data.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(values, ["https://docs.acme.example", "3"]);
    assert!(!page.has_more);
    let end = Position::decode(&page.next_cursor).unwrap();
    // The last row read is replaced: the new answer comes after the
    // cursor, never in a place the reader has passed.
    store
        .record_response(m, &survey_answer("9"), t0() + Duration::minutes(1))
        .await
        .unwrap();
    let next = store
        .responses_page(DateTime::UNIX_EPOCH, end, 10)
        .await
        .unwrap();
    let values: Vec<_> = next.data.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(values, ["9"], "the replacing answer is read once");
    let since = store
        .responses_page(t0() + Duration::minutes(1), Position::default(), 10)
        .await
        .unwrap();
    assert_eq!(
        since.data.len(),
        1,
        "only what arrived at or after the minute"
    );
    let first = store
        .responses_page(DateTime::UNIX_EPOCH, Position::default(), 1)
        .await
        .unwrap();
    assert!(first.has_more);
    assert_eq!(first.data[0].kind, "click");
}

async fn suppressions_are_listed_and_lifted_with_who_and_why(store: &Db) {
    let [(a, _), (b, _)] = welcomes_to_a_and_b(store).await;
    let now = t0() + Duration::hours(2);
    store
        .set_preferences(a, &unsubscribe("tips"), now)
        .await
        .unwrap();
    store
        .set_preferences(a, &unsubscribe("onboarding"), now)
        .await
        .unwrap();
    store
        .set_preferences(b, &unsubscribe("*"), now)
        .await
        .unwrap();
    let all = SuppressionFilter::default();
    let first = store.suppressions_page(&all, None, 2).await.unwrap();
    let ids: Vec<&str> = first.data.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["onboarding:a", "tips:a"]);
    assert!(first.has_more);
    assert_eq!(first.data[0].email, "a@example.com");
    let after = SuppressionId::parse(&first.next_cursor).unwrap();
    let rest = store.suppressions_page(&all, Some(after), 2).await.unwrap();
    let ids: Vec<&str> = rest.data.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["*:b"]);
    assert!(!rest.has_more);
    let tips = SuppressionFilter {
        category: Some("tips".into()),
        ..SuppressionFilter::default()
    };
    assert_eq!(
        store
            .suppressions_page(&tips, None, 10)
            .await
            .unwrap()
            .data
            .len(),
        1
    );
    // One customer's, paged by the key, and with a category too.
    let of_a = SuppressionFilter {
        customer: Some(id("a")),
        ..SuppressionFilter::default()
    };
    let page = store.suppressions_page(&of_a, None, 1).await.unwrap();
    assert_eq!(page.data[0].id, "onboarding:a");
    assert!(page.has_more);
    let after = SuppressionId::parse(&page.next_cursor).unwrap();
    let page = store
        .suppressions_page(&of_a, Some(after), 1)
        .await
        .unwrap();
    assert_eq!(page.data[0].id, "tips:a");
    assert!(!page.has_more);
    let tips_of_b = SuppressionFilter {
        customer: Some(id("b")),
        category: Some("tips".into()),
    };
    assert!(
        store
            .suppressions_page(&tips_of_b, None, 10)
            .await
            .unwrap()
            .data
            .is_empty()
    );
    let all_of_b = SuppressionFilter {
        customer: Some(id("b")),
        ..SuppressionFilter::default()
    };
    // A cursor from before b's rows, as a page of everyone's left it.
    let after_a = SuppressionId::parse("tips:a").unwrap();
    let page = store
        .suppressions_page(&all_of_b, Some(after_a), 10)
        .await
        .unwrap();
    assert_eq!(page.data.len(), 1);
    assert_eq!(page.data[0].id, "*:b");

    let lift = Lift::new("ana", "asked by phone to get tips again").unwrap();
    let later = now + Duration::days(1);
    let id_tips = SuppressionId::parse("tips:a").unwrap();
    let lifted = store
        .lift_suppression(&id_tips, &lift, later)
        .await
        .unwrap()
        .expect("it was there");
    assert_eq!(lifted.lifted_by, "ana");
    assert_eq!(lifted.source, "one-click");
    assert_eq!(lifted.suppressed_at, now);
    let left = store.suppressions_of(&id("a")).await.unwrap();
    assert_eq!(
        left.iter().map(|s| s.category.as_str()).collect::<Vec<_>>(),
        ["onboarding"]
    );
    assert_eq!(store.lifts_of(&id("a")).await.unwrap(), vec![lifted]);
    assert_eq!(
        store
            .lift_suppression(&id_tips, &lift, later)
            .await
            .unwrap(),
        None,
        "twice lifts nothing more"
    );
    assert!(store.lifts_of(&id("a")).await.unwrap().len() == 1);
    let both = [id("a"), id("b")];
    let both = &both;
    let left = |category: &'static str| async move {
        let mut ids: Vec<String> = store
            .suppressed_among(both, category)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.as_str().to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        left("onboarding").await,
        ["a", "b"],
        "a left it, b all mail"
    );
    assert_eq!(left("tips").await, ["b"], "a's tips were lifted");
}

/// On PostgreSQL a response written by a transaction that began earlier
/// may commit after a later one: a page stops before the later one until
/// the earlier commits, then reads both, each once.
#[tokio::test]
async fn a_page_waits_for_a_slower_transaction_on_postgres() {
    use sqlx::Connection;
    let (pg, store) = migrated_postgres().await;
    let insert = "INSERT INTO responses (id, kind, value, received_at, source) \
                  VALUES ($1, 'reply', $1, now(), 'imap')";
    let mut slow = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    let mut tx = slow.begin().await.unwrap();
    sqlx::query(insert)
        .bind("slow")
        .execute(&mut *tx)
        .await
        .unwrap();
    let mut fast = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    sqlx::query(insert)
        .bind("fast")
        .execute(&mut fast)
        .await
        .unwrap();
    let page = store
        .responses_page(DateTime::UNIX_EPOCH, Position::default(), 10)
        .await
        .unwrap();
    assert!(
        page.data.is_empty(),
        "a response committed after one still being written is not listed yet: {page:?}"
    );
    tx.commit().await.unwrap();
    let page = store
        .responses_page(
            DateTime::UNIX_EPOCH,
            Position::decode(&page.next_cursor).unwrap(),
            10,
        )
        .await
        .unwrap();
    let ids: Vec<&str> = page.data.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["slow", "fast"], "each once, by transaction");
    store.close().await;
    drop(slow);
    drop(fast);
}

/// A fresh PostgreSQL database with the store migrated in it, for the
/// tests that write beside the store on connections of their own.
async fn migrated_postgres() -> (common::PgDatabase, Db) {
    let pg = common::PgDatabase::create().await;
    let url = tend::store::DatabaseUrl::parse(&pg.url).unwrap();
    let options = tend::store::ConnectOptions {
        max_connections: 4,
        connect_timeout: std::time::Duration::from_secs(10),
        busy_timeout: std::time::Duration::from_secs(5),
    };
    let store = Db::connect(&url, &options).await.unwrap();
    store.migrate().await.unwrap();
    (pg, store)
}

async fn console_sessions_passwords_and_the_audit(store: &Db) {
    use tend::domain::console::{AuditAction, AuditEntry, NewSession, Session};
    let now = t0();
    assert_eq!(store.password_of("ann").await.unwrap(), None);
    store
        .set_password("ann", "$argon2id$first", now)
        .await
        .unwrap();
    store
        .set_password("ann", "$argon2id$second", now)
        .await
        .unwrap();
    let password = store.password_of("ann").await.unwrap().unwrap();
    assert_eq!(
        (password.hash.as_str(), password.set_at),
        ("$argon2id$second", now)
    );
    let session = |hash: &str, member: &str, from: DateTime<Utc>| NewSession {
        token_hash: hash.into(),
        session: Session {
            member: member.into(),
            csrf: format!("csrf-{hash}"),
            created_at: from,
            expires_at: from + Duration::hours(12),
        },
    };
    store
        .open_session(&session("h1", "ann", now))
        .await
        .unwrap();
    store
        .open_session(&session("h2", "vic", now))
        .await
        .unwrap();
    let read = store.session("h1", now + Duration::hours(1)).await.unwrap();
    assert_eq!(read, Some(session("h1", "ann", now).session));
    assert_eq!(store.session("nope", now).await.unwrap(), None);
    // Past its end a session reads as none, and the next one opened
    // removes it.
    let later = now + Duration::hours(12);
    assert_eq!(store.session("h1", later).await.unwrap(), None);
    store
        .open_session(&session("h3", "vic", later))
        .await
        .unwrap();
    assert!(store.session("h3", later).await.unwrap().is_some());
    // Signing out ends one; a new password ends all of a member's.
    store.close_session("h3").await.unwrap();
    assert_eq!(store.session("h3", later).await.unwrap(), None);
    store
        .open_session(&session("h4", "ann", later))
        .await
        .unwrap();
    store
        .open_session(&session("h5", "vic", later))
        .await
        .unwrap();
    store
        .set_password("ann", "$argon2id$third", later)
        .await
        .unwrap();
    assert_eq!(store.session("h4", later).await.unwrap(), None);
    assert!(store.session("h5", later).await.unwrap().is_some());

    let entry = |member: &str, action, address: &str, at| AuditEntry {
        member: member.into(),
        action,
        detail: "why".into(),
        address: address.into(),
        at,
    };
    let failed = AuditAction::SignInFailed;
    for e in [
        entry("ann", failed, "192.0.2.1", now - Duration::hours(1)),
        entry("ann", failed, "192.0.2.1", now),
        entry("ann", failed, "192.0.2.2", now),
        entry("vic", failed, "192.0.2.1", now),
        entry("ann", AuditAction::SignIn, "192.0.2.1", now),
    ] {
        store.record_audit(&e).await.unwrap();
    }
    let since = now - Duration::minutes(15);
    assert_eq!(
        store
            .audited_since(failed, "ann", "192.0.2.1", since)
            .await
            .unwrap(),
        (2, 2),
        "the failure an hour ago and the sign-in do not count"
    );
    assert_eq!(
        store
            .audited_since(failed, "zed", "198.51.100.9", since)
            .await
            .unwrap(),
        (0, 0)
    );
    assert_eq!(
        store
            .audited_since(AuditAction::SignIn, "ann", "192.0.2.2", since)
            .await
            .unwrap(),
        (1, 0),
        "each action is counted apart"
    );
    let latest = store.latest_audit(2).await.unwrap();
    assert_eq!(latest.len(), 2);
    assert_eq!(
        latest[0],
        entry("ann", AuditAction::SignIn, "192.0.2.1", now)
    );
    assert_eq!(latest[1].member, "vic");

    // A sign-in link works once, before it ends, and not after a new
    // password.
    let until = now + Duration::minutes(15);
    store.open_link("l1", "ann", now, until).await.unwrap();
    store.open_link("l2", "ann", now, until).await.unwrap();
    store.open_link("l3", "vic", now, until).await.unwrap();
    assert_eq!(
        store.link_of("l1", now).await.unwrap().as_deref(),
        Some("ann")
    );
    assert_eq!(store.link_of("nope", now).await.unwrap(), None);
    assert_eq!(
        store.use_link("l1", now).await.unwrap().as_deref(),
        Some("ann")
    );
    assert_eq!(store.use_link("l1", now).await.unwrap(), None, "used once");
    assert_eq!(store.link_of("l1", now).await.unwrap(), None);
    assert_eq!(store.link_of("l3", until).await.unwrap(), None, "ended");
    assert_eq!(store.use_link("l3", until).await.unwrap(), None, "ended");
    store
        .set_password("ann", "$argon2id$fourth", now)
        .await
        .unwrap();
    assert_eq!(store.use_link("l2", now).await.unwrap(), None, "voided");
    // Links that ended are removed as new ones are made.
    store
        .open_link("l4", "vic", until, until + Duration::minutes(15))
        .await
        .unwrap();
    assert_eq!(
        store.use_link("l4", until).await.unwrap().as_deref(),
        Some("vic")
    );
}

async fn the_console_finds_people_and_accounts_by_name_address_and_id(store: &Db) {
    let person = |id: &str, name: &str, email: &str| CustomerRecord {
        name: name.into(),
        email: Email::parse(email).unwrap(),
        account_id: (id != "solo").then(|| account_id("globex")),
        ..customer(id)
    };
    let mut globex = account("globex");
    globex.name = "Globex Corporation".into();
    store
        .upsert_accounts(&[globex, account("initech")], t0())
        .await
        .unwrap();
    store
        .upsert_customers(
            &[
                person("ana", "Ana Maria Silva", "ana.silva@globex.example"),
                person("bea", "Bea Santos", "Bea@Globex.example"),
                person("solo", "Silvio Ng", "silvio@elsewhere.example"),
                person("zed", "", "zed@initech.example"),
            ],
            t0(),
        )
        .await
        .unwrap();
    let found = |text: &'static str| async move {
        let f = store.search(text, 50).await.unwrap();
        let people: Vec<String> = f.customers.iter().map(|c| c.id.clone()).collect();
        let accounts: Vec<String> = f.accounts.iter().map(|a| a.id.clone()).collect();
        (people, accounts, f.more)
    };
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // The start of a name, of its last word, or of an address, in any
    // case.
    assert_eq!(found("ana").await.0, ids(&["ana"]));
    assert_eq!(found("ANA MARIA s").await.0, ids(&["ana"]));
    assert_eq!(found("silv").await.0, ids(&["ana", "solo"]), "last words");
    assert_eq!(found("bea@glo").await.0, ids(&["bea"]), "the address");
    assert_eq!(
        found("maria").await.0,
        Vec::<String>::new(),
        "a middle word"
    );
    assert_eq!(found("zed").await.0, ids(&["zed"]), "no name, its address");
    // The middle of a word is not a start.
    assert_eq!(found("ilva").await.0, Vec::<String>::new());
    // An id whole, first, and accounts by name or id.
    let (people, accounts, _) = found("globex").await;
    assert_eq!(accounts, ids(&["globex"]));
    assert_eq!(
        people,
        Vec::<String>::new(),
        "an address's domain is no start"
    );
    assert_eq!(found("corp").await.1, ids(&["globex"]), "its last word");
    assert_eq!(found("initech").await.1, ids(&["initech"]));
    let f = store.search("bea", 50).await.unwrap();
    assert_eq!(
        f.customers[0],
        FoundCustomer {
            id: "bea".into(),
            name: "Bea Santos".into(),
            email: "Bea@Globex.example".into(),
            account_id: Some("globex".into()),
            stage: None,
        }
    );
    assert_eq!(store.search("  ", 50).await.unwrap(), Found::default());
    // On PostgreSQL the people an insert adds wait for their terms in a
    // queue, which a search reads meanwhile; once their terms are written,
    // in chunks, the same searches find the same. SQLite writes terms at
    // once and has nothing to fill.
    let searches = [
        "ana",
        "ANA MARIA s",
        "silv",
        "bea@glo",
        "zed",
        "maria",
        "globex",
    ];
    let mut before = Vec::new();
    for text in searches {
        before.push(found(text).await);
    }
    let mut taken = Vec::new();
    loop {
        let t = store.fill_search(3).await.unwrap();
        taken.push(t);
        if t < 3 {
            break;
        }
    }
    let queued = if store.backend() == "postgres" {
        vec![3, 1]
    } else {
        vec![0]
    };
    assert_eq!(taken, queued, "four people were inserted");
    assert_eq!(store.fill_search(3).await.unwrap(), 0, "nothing waits");
    for (text, before) in searches.into_iter().zip(before) {
        assert_eq!(found(text).await, before, "{text:?} once filled");
    }
    // A name of kilobytes is stored, and found by its first 200
    // characters, or more.
    let long = "Q".repeat(5000);
    store
        .upsert_customers(&[person("long", &long, "long@initech.example")], t0())
        .await
        .unwrap();
    assert_eq!(found("qqqq").await.0, ids(&["long"]));
    let typed: &'static str = Box::leak(long.to_lowercase().into_boxed_str());
    assert_eq!(found(typed).await.0, ids(&["long"]));

    // A new name or address is found by it, and the old one no longer.
    store
        .upsert_customers(
            &[person("bea", "Beatriz Costa", "bea@initech.example")],
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(found("santos").await.0, Vec::<String>::new());
    assert_eq!(found("costa").await.0, ids(&["bea"]));
    assert_eq!(found("bea@").await.0, ids(&["bea"]));
    assert_eq!(found("bea@globex").await.0, Vec::<String>::new());
    let mut renamed = account("globex");
    renamed.name = "Umbrella".into();
    store.upsert_accounts(&[renamed], t0()).await.unwrap();
    assert_eq!(found("corp").await.1, Vec::<String>::new());
    assert_eq!(found("umbr").await.1, ids(&["globex"]));
    // Beyond the limit, the search says there is more.
    let f = store.search("silv", 1).await.unwrap();
    assert_eq!(f.customers.len(), 1);
    assert!(f.more);
    // An erased person is found by nothing, their stand-in neither.
    store
        .erase_customer(
            &CustomerId::parse("solo").unwrap(),
            &CustomerId::parse("erased-1").unwrap(),
            "hash",
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(found("silv").await.0, ids(&["ana"]));
    assert_eq!(found("erased").await.0, Vec::<String>::new());

    // Renamed and erased while waiting in the queue: filled with the new
    // name, once, and the erased person not at all.
    store
        .upsert_customers(
            &[
                person("cy", "Cy Young", "cy@initech.example"),
                person("dee", "Dee Lane", "dee@initech.example"),
            ],
            t0(),
        )
        .await
        .unwrap();
    store
        .upsert_customers(&[person("cy", "Cyrus Old", "cy@initech.example")], t0())
        .await
        .unwrap();
    store
        .erase_customer(
            &CustomerId::parse("dee").unwrap(),
            &CustomerId::parse("erased-2").unwrap(),
            "hash-2",
            t0(),
        )
        .await
        .unwrap();
    for filled in [false, true] {
        assert_eq!(found("cyrus").await.0, ids(&["cy"]), "filled: {filled}");
        assert_eq!(found("old").await.0, ids(&["cy"]), "filled: {filled}");
        assert_eq!(found("young").await.0, Vec::<String>::new());
        assert_eq!(found("lane").await.0, Vec::<String>::new());
        assert_eq!(found("dee").await.0, Vec::<String>::new());
        while store.fill_search(100).await.unwrap() > 0 {}
    }
}

async fn the_consoles_answers_replies_and_detractors_read_back(store: &Db) {
    store
        .upsert_customers(&[customer("a"), customer("b"), customer("c")], t0())
        .await
        .unwrap();
    let nps = |who: &str| NewMessage {
        survey: Some(Survey::Nps),
        ..message(who, "nps", "signup_at")
    };
    let (a, b, c) = (nps("a"), nps("b"), nps("c"));
    let ids = [a.id, b.id, c.id];
    plan_messages(store, &[a, b, c], t0()).await.unwrap();
    let respond = |kind, value: Option<&str>, comment: Option<&str>| NewResponse {
        kind,
        value: value.map(str::to_owned),
        comment: comment.map(str::to_owned),
        source: Source::SurveyPage,
        replace: false,
    };
    let at = |minutes| t0() + Duration::minutes(minutes);
    for (m, response, when) in [
        (
            ids[0],
            respond(ResponseKind::Survey, Some("10"), None),
            at(1),
        ),
        (
            ids[1],
            respond(ResponseKind::Survey, Some("3"), Some("slow")),
            at(2),
        ),
        (
            ids[2],
            respond(ResponseKind::Survey, Some("6"), None),
            at(3),
        ),
        (
            ids[1],
            respond(ResponseKind::Reply, None, Some("Thanks, but…")),
            at(4),
        ),
    ] {
        store.record_response(m, &response, when).await.unwrap();
    }
    let answers = store.survey_answers_since(at(2)).await.unwrap();
    let read: Vec<(&str, &str)> = answers
        .iter()
        .map(|a| (a.survey.as_str(), a.value.as_str()))
        .collect();
    assert_eq!(
        read,
        [("nps", "3"), ("nps", "6")],
        "from $1 on, oldest first"
    );
    assert_eq!(answers[0].received_at, at(2));
    let detractors = store.latest_detractors(5).await.unwrap();
    let who: Vec<_> = detractors
        .iter()
        .map(|r| {
            (
                r.customer_id.as_deref().unwrap(),
                r.value.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(who, [("c", "6"), ("b", "3")], "newest first, 0 to 6 only");
    assert_eq!(store.latest_detractors(1).await.unwrap().len(), 1);
    let replies = store.latest_replies(5).await.unwrap();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].comment.as_deref(), Some("Thanks, but…"));
}
