//! Render throughput on one core: templates rendered and composed into
//! RFC 5322 bytes for a sample customer, N times. First one realistic
//! template (front matter, helpers, a tracked link, the NPS survey, the
//! default layout), as this benchmark has always measured; then every
//! shipped template (`templates/` and the built-in notices) in turn, each
//! with the NPS survey, for an account with an owner.
//!
//! Prints the time of each phase too: rendering (Handlebars, Markdown,
//! links), building the MIME message (lettre, with each part's
//! transfer encoding), and writing it out as bytes. Runs on tend's own
//! allocator, as the daemon does.
//!
//! `cargo bench --bench render [-- N]` (default 20000).

use std::time::Instant;

use chrono::{DateTime, Utc};
use tend::config::Settings;
use tend::deliver::mime::{Addressing, compose};
use tend::domain::account::AccountFacts;
use tend::domain::customer::Customer;
use tend::domain::message::MessageId;
use tend::domain::playbook::Survey;
use tend::render::{Letter, Renderer, context};
use tend::token::Signer;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TEMPLATE: &str = "+++\nsubject = \"How is your first week going, {{customer.first_name}}?\"\npreheader = \"Two minutes that make the next month easier\"\n+++\nHi {{customer.first_name}},\n\nYou signed up {{pluralize (days_since customer.signup_at) \"day\"}} ago. Teams that set up **dashboards** in their first week get twice the value: [here is how](https://docs.acme.example/dashboards).\n\n- Connect a data source\n- Pick a template\n- Share it with your team\n\nYour renewal is on {{date customer.renewal_at}}.\n\n{{> survey}}\n";

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let now = "2026-03-10T10:00:00Z".parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("checkin.md.hbs"), TEMPLATE).unwrap();
    let one = renderer(&dir.path().to_string_lossy());
    measure("the check-in template", &one, &["checkin"], None, n, now);
    let shipped = renderer(concat!(env!("CARGO_MANIFEST_DIR"), "/templates"));
    let mut templates: Vec<&str> = shipped.templates().collect();
    templates.sort_unstable();
    measure(
        &format!("the {} shipped templates", templates.len()),
        &shipped,
        &templates,
        Some(&AccountFacts::sample(now)),
        n,
        now,
    );
}

fn renderer(templates: &str) -> Renderer {
    let mut settings = Settings::default();
    settings.paths.templates = templates.to_owned();
    Renderer::load(&settings, Signer::new(b"bench")).unwrap()
}

/// Renders and composes `n` messages, going round `templates`.
fn measure(
    what: &str,
    renderer: &Renderer,
    templates: &[&str],
    account: Option<&AccountFacts>,
    n: usize,
    now: DateTime<Utc>,
) {
    let customer = Customer::sample(now);
    let incident = context::sample_incident();
    let from = "Acme Success <success@acme.example>".parse().unwrap();
    let reply_to = "success+0123456789abcdef@acme.example".parse().unwrap();
    let unsubscribe_to = "success+u-0123456789abcdef@acme.example".parse().unwrap();
    let to = "sam@example.com".parse().unwrap();
    let mut bytes = 0usize;
    let (mut rendering, mut building, mut writing) = (0.0, 0.0, 0.0);
    let started = Instant::now();
    for i in 0..n {
        let template = templates[i % templates.len()];
        let phase = Instant::now();
        let id = MessageId::new();
        let letter = Letter {
            message: id,
            customer: &customer,
            category: "checkins",
            survey: Some(Survey::Nps),
            incident: template.starts_with("incidents/").then_some(&incident),
            account,
            sender: None,
            now,
        };
        let rendered = renderer.render(template, &letter).unwrap();
        rendering += phase.elapsed().as_secs_f64();
        let phase = Instant::now();
        let message_id = format!("{}@acme.example", id.0.simple());
        let email = compose(
            &rendered,
            &Addressing {
                from: &from,
                reply_to: &reply_to,
                reply_person: None,
                unsubscribe_to: &unsubscribe_to,
                to_name: &customer.record.name,
                to: &to,
                message_id: &message_id,
                in_reply_to: None,
                date: std::time::SystemTime::now(),
            },
        )
        .unwrap();
        building += phase.elapsed().as_secs_f64();
        let phase = Instant::now();
        bytes += email.formatted().len();
        writing += phase.elapsed().as_secs_f64();
    }
    let took = started.elapsed().as_secs_f64();
    let each = |secs: f64| secs * 1e6 / n as f64;
    println!(
        "{what}: rendered and composed {n} messages in {took:.3} s on one core: {:.0} msg/s ({:.1} µs each, {} bytes each)",
        n as f64 / took,
        each(took),
        bytes / n
    );
    println!(
        "  of which rendering {:.1} µs, building the MIME message {:.1} µs, writing its bytes {:.1} µs",
        each(rendering),
        each(building),
        each(writing)
    );
}
