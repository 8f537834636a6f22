//! The sends a delivery pass has decided and not yet committed `sending`,
//! counted per customer. The claim stage runs ahead of marking, so when it
//! decides a batch the store's count of what went to a customer
//! (`Outbox::sent_since`) cannot see what an earlier batch of the same pass
//! is about to send them; without this count a customer whose mail is
//! claimed into two batches could get more than the frequency cap allows.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::domain::customer::CustomerId;
use crate::domain::message::Outgoing;

#[derive(Default)]
pub struct Unmarked {
    counts: Mutex<HashMap<CustomerId, u32>>,
    /// Held while the counts and the store are read together, and while a
    /// chunk's `sending` commits and leaves the counts: so a send is
    /// counted in one or the other, never both (which would hold a
    /// customer's next message for a whole cap period) nor neither.
    turn: tokio::sync::Mutex<()>,
}

impl Unmarked {
    /// Waits for the turn to read the counts and the store together, or to
    /// commit sends and take them out of the counts.
    pub async fn turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.turn.lock().await
    }

    /// Counts messages decided to go now.
    pub fn add<'a>(&self, going: impl IntoIterator<Item = &'a Outgoing>) {
        let mut counts = self.lock();
        for m in going {
            *counts.entry(m.customer.record.id.clone()).or_default() += 1;
        }
    }

    /// Forgets messages whose `sending` is committed (the store counts them
    /// from now on) or that will not go after all.
    pub fn remove<'a>(&self, settled: impl IntoIterator<Item = &'a Outgoing>) {
        let mut counts = self.lock();
        for m in settled {
            let id = &m.customer.record.id;
            if let Some(n) = counts.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(id);
                }
            }
        }
    }

    /// Adds the decided sends not yet committed of `customers` to `sent`
    /// (the store's count, [`crate::store::Outbox::sent_since`]) as going
    /// at `now`, once however often a customer is listed. Read the store
    /// and call this under one [`Unmarked::turn`].
    pub fn count_into(
        &self,
        sent: &mut HashMap<CustomerId, Vec<DateTime<Utc>>>,
        customers: &[CustomerId],
        now: DateTime<Utc>,
    ) {
        let counts = self.lock();
        let going: HashMap<&CustomerId, u32> = customers
            .iter()
            .filter_map(|c| counts.get(c).map(|&n| (c, n)))
            .collect();
        for (customer, n) in going {
            sent.entry(customer.clone())
                .or_default()
                .extend(std::iter::repeat_n(now, n as usize));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CustomerId, u32>> {
        // The counts stay whole whatever panicked while holding them.
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
