//! Conditions on one core: how long one customer takes to judge against a
//! selector (building the customer's CEL value and evaluating), for the
//! shapes incidents and playbooks use. No store and no I/O: the figure is
//! the CPU an incident opening or a planning pass spends per customer.
//!
//! `cargo bench --bench condition [-- SIZE]` (size defaults to 200,000).

use std::collections::HashSet;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tend::domain::condition::{Condition, Facts};
use tend::domain::customer::Customer;

const SELECTORS: &[&str] = &[
    "customer.health == 7",
    r#"customer.attributes.region == "eu" && "api" in customer.attributes.features"#,
    r#"customer.plan in ["pro", "enterprise"] && days_since(customer.signup_at) >= 14"#,
    r#"customer.attributes.features.exists(f, f == "sso")"#,
];

fn customers(n: usize, now: DateTime<Utc>) -> Vec<Customer> {
    let features = ["api", "dashboards", "sso", "alerts", "exports"];
    (0..n)
        .map(|i| {
            let mut c = Customer::sample(now);
            c.record.health = Some((i % 101) as u8);
            c.record.plan = ["free", "pro", "enterprise", "self-hosted"][i % 4].into();
            let used: Vec<&str> = features
                .iter()
                .enumerate()
                .filter(|(f, _)| (i >> f) & 1 == 1)
                .map(|(_, f)| *f)
                .collect();
            let region = ["eu", "us", "apac"][i % 3];
            c.record.attributes = serde_json::json!({
                "region": region,
                "company": format!("Company {}", i % 977),
                "features": used,
            })
            .as_object()
            .unwrap()
            .clone();
            c
        })
        .collect()
}

fn main() {
    let n = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(200_000);
    let now: DateTime<Utc> = "2026-12-03T10:00:00Z".parse().unwrap();
    let all = customers(n, now);
    let sent = HashSet::new();
    for source in SELECTORS {
        let condition = Condition::compile(source).unwrap();
        let started = Instant::now();
        let mut matched = 0;
        for customer in &all {
            let facts = Facts {
                customer,
                account: None,
                now,
                events: &[],
                sent: &sent,
            };
            if condition.holds(&facts).unwrap_or(false) {
                matched += 1;
            }
        }
        let took = started.elapsed();
        println!(
            "{:>8} customers, {:>6} matched, {:>7.2} µs a customer ({:>9.0} a second): {source}",
            n,
            matched,
            took.as_secs_f64() * 1e6 / n as f64,
            n as f64 / took.as_secs_f64(),
        );
    }
}
