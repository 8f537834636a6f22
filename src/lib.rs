//! tend: a self-hosted daemon for proactive customer success.
//!
//! How the crate is laid out, following a message from the files people edit
//! to the store:
//!
//! - [`config`]: `config/tend.toml` + environment → typed, validated settings.
//! - [`domain`]: pure types and decisions (customers, events, time spans,
//!   send windows); no I/O.
//! - [`import`]: CSV/JSONL files → validated customer and event records.
//! - [`planner`]: walks the customers due for a look and puts what is due
//!   into the outbox (decisions in `domain::plan`); its forecast decides
//!   when each goes with `domain::policy`, as delivery does.
//! - [`render`]: a template + a customer → subject, text part, HTML part,
//!   in the template's translation that best fits the customer's locale.
//! - [`language`]: matching a locale to the languages offered, and tend's
//!   own words (footer, survey, pages) in each language it ships.
//! - [`deliver`]: the outbox worker: claim, decide (`domain::policy`),
//!   compose, send, record.
//! - [`token`]: signed link and reply tokens, made at delivery and checked
//!   when a customer answers.
//! - [`inbound`]: replies, bounces and complaints coming back by mail (a
//!   file, the webhook, IMAP): classified, matched to the message they
//!   answer, recorded.
//! - [`store`]: the only place with SQL; SQLite and PostgreSQL behind one trait.
//! - [`engine`]: the configured planner and delivery worker, built together.
//! - [`daemon`]: `tend run`: job loops woken by the scheduler, signals,
//!   reload, systemd notifications, graceful stop.
//! - [`http`]: health, readiness, metrics, the ingestion API and the links
//!   customers follow from messages (axum), over its own state
//!   (`http::AppState`: store, configuration, limiter, wake-ups, clock),
//!   which the daemon builds and shares with its jobs.
//! - [`telemetry`]: every metric's name and labels.
//! - [`check`]: every validation a person can run before shipping an edit.
//! - [`demo`]: the quick start's made-up customers, one for each shipped
//!   playbook.
//! - [`suggest`]: "did you mean …?" for a misspelt name in a file people edit.
//! - [`cli`]: one module per command; `main.rs` only maps errors to exit codes.

pub mod broadcast;
pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod daemon;
pub mod deliver;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod http;
pub mod import;
pub mod inbound;
pub mod incident;
pub mod language;
pub mod notify;
pub mod planner;
pub mod playbooks;
pub mod preview;
pub mod privacy;
pub mod problem;
pub mod render;
pub mod store;
pub mod suggest;
pub mod telemetry;
pub mod timeline;
pub mod token;
pub mod toml_source;
pub mod webhook;
