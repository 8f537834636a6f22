//! Outbound webhooks: events posted to other systems as they happen.
//! `signature` signs each delivery as the Standard Webhooks specification
//! says, so any of its verifiers accepts it.

pub mod post;
pub mod signature;
