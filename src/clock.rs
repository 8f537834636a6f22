//! Time, injected: the system clock in production, a fixed instant under
//! `--now` and in tests, so every rule about time can be tested without
//! waiting.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy)]
pub enum Clock {
    System,
    Fixed(DateTime<Utc>),
}

impl Clock {
    /// `--now` when given, else the system clock.
    pub fn from_flag(now: Option<DateTime<Utc>>) -> Self {
        now.map_or(Self::System, Self::Fixed)
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Self::System => Utc::now(),
            Self::Fixed(t) => *t,
        }
    }
}
