//! tend: a self-hosted daemon for proactive customer success.
//!
//! How the crate is laid out, following a message from the files people edit
//! to the store:
//!
//! - [`config`]: `config/tend.toml` + environment → typed, validated settings.
//! - [`domain`]: pure types and decisions (customers, events, time spans,
//!   send windows); no I/O.
//! - [`import`]: CSV/JSONL files → validated customer and event records.
//! - [`store`]: the only place with SQL; SQLite and PostgreSQL behind one trait.
//! - [`check`]: every validation a person can run before shipping an edit.
//! - [`cli`]: one module per command; `main.rs` only maps errors to exit codes.

pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod import;
pub mod planner;
pub mod playbooks;
pub mod problem;
pub mod store;
pub mod toml_source;
