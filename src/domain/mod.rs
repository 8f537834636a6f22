//! Pure types and decisions: no store, no clock, no network.
//!
//! Everything here is parsed once at the edge (import, API, config) and is
//! valid by construction afterwards.

pub mod account;
pub mod alert;
pub mod availability;
pub mod broadcast;
pub mod catchup;
pub mod condition;
pub mod console;
pub mod control;
pub mod customer;
pub mod event;
pub mod feed;
pub mod holiday;
pub mod inbound;
pub mod incident;
pub mod lifecycle;
pub mod message;
pub mod notification;
pub mod overlap;
pub mod plan;
pub mod planned;
pub mod playbook;
pub mod policy;
pub mod preference;
pub mod prefilter;
pub mod reach;
pub mod report;
pub mod response;
pub mod signal;
pub mod span;
pub mod suppression;
pub mod survey;
pub mod timestamp;
pub mod window;
