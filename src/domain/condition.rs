//! Conditions in CEL (Common Expression Language), with `prefilter` the only
//! places that know the `cel` crate: compile once, evaluate against a
//! customer's facts.
//!
//! Variables: `customer` (every field, `first_name`, `stage`, `attributes`,
//! `account_id`, `roles`), `account` (the customer's account, or their
//! own when they have none: see [`super::account`]) and `now`. Functions: `days_since(ts)`, `days_until(ts)`,
//! `event_count(name)`, `event_count(name, "7d")`, `sent(step_id)`.
//! A missing date (`days_since(customer.renewal_at)` for a customer without
//! one) is an evaluation error, which callers treat as "does not hold".

mod explain;
mod guard;

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, OnceLock, mpsc};

use cel::extractors::Arguments;
use cel::objects::Map;
use cel::{Context, Env, ExecutionError, Program, Value};
use chrono::{DateTime, Utc};

use super::account::{ACCOUNT_SEEN, Account, AccountFacts};
use super::customer::{Customer, RECORD_FIELDS};
use super::span::Span;

pub use guard::LimitError;

/// The parser recurses deeply on nested expressions; give it room.
const PARSER_STACK: usize = 16 * 1024 * 1024;

/// Work for the parser's thread.
type Job = Box<dyn FnOnce() + Send>;

/// The parser's thread, started on first use and again if it ever ends.
///
/// One thread parses every condition: a thread a condition cost six times
/// the parse itself, and a process compiles every condition of every
/// playbook as it starts.
static PARSER: Mutex<Parser> = Mutex::new(Parser {
    generation: 0,
    jobs: None,
});

/// The parser's thread as its callers see it: where its jobs go, and how
/// many threads were started before it.
struct Parser {
    generation: u64,
    jobs: Option<mpsc::Sender<Job>>,
}

fn start_parser() -> Result<mpsc::Sender<Job>, String> {
    let (jobs, queue) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("cel-parse".into())
        .stack_size(PARSER_STACK)
        .spawn(move || {
            for job in queue {
                // A job catches its own panics; this one is for a panic
                // that escapes it, so that the next condition still parses.
                let _ = catch_unwind(AssertUnwindSafe(job));
            }
        })
        .map(|_| jobs)
        .map_err(|e| format!("cannot start the condition parser: {e}"))
}

/// Runs `work` on the parser's thread and waits for its result; starts a
/// fresh thread when the last one has ended, and runs `work` again there
/// when the thread ended before answering (a job queued behind one that
/// ended it is lost with it). An error says `work` panicked, or that no
/// thread could run it.
fn on_parser_thread<T: Send + 'static>(
    work: impl Fn() -> T + Send + Sync + 'static,
) -> Result<T, String> {
    #[cfg(test)]
    let _calm = disruption::calm();
    let work = Arc::new(work);
    // A few times at most: where the last job ran, then on fresh threads.
    // More than twice, because jobs of several callers can be lost with
    // one thread, and a fresh thread can end again on another caller's
    // bad input before this job reaches it.
    for _ in 0..4 {
        let (generation, jobs) = {
            let mut parser = PARSER
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let jobs = match &parser.jobs {
                Some(jobs) => jobs.clone(),
                None => {
                    let jobs = start_parser()?;
                    parser.generation += 1;
                    parser.jobs.insert(jobs).clone()
                }
            };
            (parser.generation, jobs)
        };
        let (reply, result) = mpsc::channel();
        let work = Arc::clone(&work);
        let job: Job = Box::new(move || {
            let done = catch_unwind(AssertUnwindSafe(|| work()));
            let _ = reply.send(done.map_err(drop));
        });
        // A job that ran answers, even when `work` panicked; no answer
        // means the thread ended before or while running it.
        let answer = jobs.send(job).ok().and_then(|()| result.recv().ok());
        match answer {
            Some(Ok(value)) => return Ok(value),
            Some(Err(())) => return Err(PARSER_FAILED.to_owned()),
            None => {
                let mut parser = PARSER
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                // Forget the ended thread, unless another caller has
                // already started the next one.
                if parser.generation == generation {
                    parser.jobs = None;
                }
            }
        }
    }
    Err(PARSER_FAILED.to_owned())
}

/// In tests only: the tests that make the parser's thread panic or end
/// run alone, so that no other test's condition meets that moment.
#[cfg(test)]
mod disruption {
    use std::cell::Cell;
    use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

    static LOCK: RwLock<()> = RwLock::new(());
    thread_local!(static DISRUPTING: Cell<bool> = const { Cell::new(false) });

    pub struct Disrupting(#[allow(dead_code)] RwLockWriteGuard<'static, ()>);

    impl Drop for Disrupting {
        fn drop(&mut self) {
            DISRUPTING.with(|d| d.set(false));
        }
    }

    /// Held by a test that disrupts the parser.
    pub fn begin() -> Disrupting {
        let guard = LOCK.write().unwrap_or_else(|p| p.into_inner());
        DISRUPTING.with(|d| d.set(true));
        Disrupting(guard)
    }

    /// Held around every other use of the parser.
    pub fn calm() -> Option<RwLockReadGuard<'static, ()>> {
        (!DISRUPTING.with(Cell::get)).then(|| LOCK.read().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A condition parsed and within its limits.
struct Parsed {
    program: Program,
    /// Whether it goes through lists (a list macro).
    iterates: bool,
}

/// Why a condition's text was refused.
enum Refusal {
    /// What CEL's parser says about the text, place by place.
    Syntax(Vec<explain::ParserError>),
    Limit(LimitError),
}

/// Parses `source` on the parser's thread and checks the result against
/// the limits. The outer error says the parser itself failed.
///
/// Everything that touches the parser's output happens inside the guard,
/// formatting its errors included: `cel` 0.15 panicked formatting the
/// error for 100,000 nested brackets, outside it.
fn parse(source: &str) -> Result<Result<Parsed, Refusal>, String> {
    let text = source.to_owned();
    on_parser_thread(move || {
        catch_unwind(|| match Program::compile(&text) {
            Ok(program) => match guard::check(program.expression()) {
                Ok(()) => Ok(Parsed {
                    iterates: guard::iterates(program.expression()),
                    program,
                }),
                Err(limit) => Err(Refusal::Limit(limit)),
            },
            // Fields only: formatting these errors is what panicked.
            Err(e) => Err(Refusal::Syntax(
                e.errors
                    .iter()
                    .map(|e| explain::ParserError {
                        line: usize::try_from(e.pos.0).unwrap_or(1).max(1),
                        // CEL counts columns from 1.
                        column: usize::try_from(e.pos.1 - 1).unwrap_or(0),
                        message: e.msg.clone(),
                    })
                    .collect(),
            )),
        })
        .map_err(|_| PARSER_FAILED.to_owned())
    })?
}

const PARSER_FAILED: &str = "the condition parser failed on this condition";

/// A compiled condition with its source text.
#[derive(Clone)]
pub struct Condition {
    source: String,
    program: Arc<Program>,
    reads: Reads,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Condition({:?})", self.source)
    }
}

impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Why a condition could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConditionError {
    pub message: String,
    /// The condition read a map key this customer does not have (usually an
    /// attribute): true for some customers, so not a mistake in itself.
    pub missing_key: bool,
    /// A guard stopped the evaluation (customer data over a limit, or a
    /// fault in the evaluator): unlike a missing attribute, worth a log line.
    pub guarded: bool,
    /// The name CEL did not know (a misspelt function, text without quotes).
    pub undeclared: Option<String>,
}

impl ConditionError {
    fn new(message: String) -> Self {
        Self {
            message,
            missing_key: false,
            guarded: false,
            undeclared: None,
        }
    }

    fn guarded(message: String) -> Self {
        Self {
            guarded: true,
            ..Self::new(message)
        }
    }
}

/// What a condition may ask about one customer at one instant.
pub struct Facts<'a> {
    pub customer: &'a Customer,
    /// The customer's account; conditions that read `account` need it.
    pub account: Option<&'a AccountFacts>,
    pub now: DateTime<Utc>,
    /// The customer's events: name and time.
    pub events: &'a [(String, DateTime<Utc>)],
    /// Steps of the condition's playbook this customer already received.
    pub sent: &'a HashSet<String>,
}

impl Condition {
    /// Compiles `source`; the error says what is wrong in words a success
    /// manager can act on.
    ///
    /// A condition over the limits of `guard` (its length, its nesting, its
    /// cost for one customer at worst) is refused before it is kept; its
    /// size and nesting before the parser sees it.
    pub fn compile(source: &str) -> Result<Self, String> {
        guard::scan(source).map_err(|e| e.to_string())?;
        match parse(source)? {
            Ok(Parsed { program, iterates }) => Ok(Self {
                reads: Reads::of(source, &program, iterates),
                source: source.to_owned(),
                program: Arc::new(program),
            }),
            Err(Refusal::Syntax(errors)) => {
                let slips = explain::slips(source);
                let mut mistakes = explain::parser_mistakes(source, &errors, &slips);
                mistakes.extend(slips);
                Err(explain::render(
                    source,
                    "the condition does not parse:",
                    mistakes,
                ))
            }
            Err(Refusal::Limit(e)) => Err(e.to_string()),
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The customer's values this condition reads, as a person reads them
    /// (`customer.plan` → `"free"`, an unset date → `not set`): what a
    /// preview shows beside a condition that keeps a customer out.
    pub fn seen(&self, customer: &Customer) -> Vec<(String, String)> {
        if self.reads.fields == EVERY_FIELD {
            return Vec::new();
        }
        let r = &customer.record;
        let quoted = |s: &str| format!("{s:?}");
        let at = |t: Option<DateTime<Utc>>| {
            t.map_or("not set".to_owned(), |t| {
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            })
        };
        fields()
            .filter(|f| self.reads.reads_field(f))
            .map(|name| {
                let value = match name {
                    "id" => quoted(r.id.as_str()),
                    "email" => quoted(r.email.as_str()),
                    "name" => quoted(&r.name),
                    "first_name" => quoted(r.first_name()),
                    "timezone" => quoted(r.timezone.name()),
                    "locale" => quoted(&r.locale),
                    "plan" => quoted(&r.plan),
                    "signup_at" => at(r.signup_at),
                    "renewal_at" => at(r.renewal_at),
                    "last_seen_at" => at(r.last_seen_at),
                    "health" => r.health.map_or("not set".to_owned(), |h| h.to_string()),
                    "stage" => customer
                        .stage
                        .as_deref()
                        .map_or("no stage".to_owned(), quoted),
                    "account_id" => r
                        .account_id
                        .as_ref()
                        .map_or("no account".to_owned(), |a| quoted(a.as_str())),
                    "roles" => format!("{:?}", r.roles.names()),
                    "holidays" => r
                        .availability
                        .holidays
                        .as_deref()
                        .map_or("not set".to_owned(), quoted),
                    "quiet_until" => at(r.availability.quiet_until),
                    // The attributes.
                    _ => {
                        let mut json = serde_json::to_string(&r.attributes).unwrap_or_default();
                        if json.chars().count() > 200 {
                            json = json.chars().take(200).collect::<String>() + "…";
                        }
                        json
                    }
                };
                (format!("customer.{name}"), value)
            })
            .collect()
    }

    /// What of a customer the condition reads.
    pub fn reads(&self) -> Reads {
        self.reads
    }

    /// The part of the condition the store can check itself, if any:
    /// every customer the condition matches passes it.
    pub fn prefilter(&self) -> Option<super::prefilter::Prefilter> {
        super::prefilter::of(self.program.expression())
    }

    /// Whether the condition holds. A result that is not a boolean, or an
    /// error while evaluating, is an `Err` naming the cause.
    pub fn holds(&self, facts: &Facts<'_>) -> Result<bool, ConditionError> {
        self.holds_in(&Scope::reading(facts, self.reads)?)
    }

    /// Whether the condition holds for `customer`, an error counting as
    /// "does not hold" (a missing date or attribute usually is one). An
    /// evaluation a guard stopped is logged: someone should look at the
    /// condition or at the customer's data.
    pub fn holds_for(&self, scope: &Scope, customer: &str) -> bool {
        self.holds_in(scope).unwrap_or_else(|e| {
            if e.guarded {
                tracing::warn!(customer, error = %e, "condition not evaluated");
            }
            false
        })
    }

    /// Whether the condition holds in a scope already built, for evaluating
    /// several conditions about one customer without rebuilding it.
    ///
    /// A panic in the evaluator fails this evaluation, not the caller.
    pub fn holds_in(&self, scope: &Scope) -> Result<bool, ConditionError> {
        if let Some(refused) = &scope.refused
            && self.reads.iterates
        {
            return Err(ConditionError::guarded(format!(
                "the condition {:?} is not evaluated: {refused}",
                self.source
            )));
        }
        let executed = catch_unwind(AssertUnwindSafe(|| self.program.execute(&scope.context)));
        match executed {
            Ok(Ok(Value::Bool(b))) => Ok(b),
            Ok(Ok(other)) => Err(ConditionError::new(format!(
                "the condition {:?} gives {other:?}, not true or false",
                self.source
            ))),
            Ok(Err(e)) => Err(ConditionError {
                missing_key: matches!(e, ExecutionError::NoSuchKey(_)),
                undeclared: match &e {
                    ExecutionError::UndeclaredReference(name) => Some(name.to_string()),
                    _ => None,
                },
                message: format!("the condition {:?} cannot be evaluated: {e}", self.source),
                guarded: false,
            }),
            Err(_) => Err(ConditionError::guarded(format!(
                "the condition {:?} made the CEL evaluator fail; it does not hold for this customer",
                self.source
            ))),
        }
    }
}

/// What a condition reads of a customer (which fields) and which of tend's
/// functions it calls: building a scope converts only those, because
/// converting a whole customer for CEL costs more than most evaluations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads {
    /// One bit per customer field, in the order of `fields()`.
    fields: u32,
    /// One bit per entry of `FUNCTIONS`.
    functions: u8,
    /// Whether it goes through lists: the customer data it sees is then
    /// checked against the guard's bound on list lengths.
    iterates: bool,
    /// Whether it reads `account`.
    account: bool,
}

/// The customer as CEL sees it: record fields, then derived ones; a
/// field's place here is its bit in `Reads::fields`.
fn fields() -> impl Iterator<Item = &'static str> {
    RECORD_FIELDS.iter().chain(DERIVED_FIELDS).copied()
}

/// Every bit of `Reads::fields`.
const EVERY_FIELD: u32 = u32::MAX;

/// tend's own functions.
const FUNCTIONS: &[&str] = &["days_since", "days_until", "event_count", "sent"];

impl Reads {
    /// What `source` reads. A `customer` not followed by `.FIELD` (the
    /// whole customer handed to a function or compared) reads every field.
    fn of(source: &str, program: &Program, iterates: bool) -> Self {
        let references = program.references();
        let mut functions = 0;
        for (i, name) in FUNCTIONS.iter().enumerate() {
            if references.has_function(name) {
                functions |= 1 << i;
            }
        }
        let mut read = 0;
        let mut rest = source;
        while let Some(at) = rest.find("customer") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "customer".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                continue;
            }
            let after = rest.trim_start();
            let Some(field) = after.strip_prefix('.') else {
                if !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
                    read = EVERY_FIELD;
                }
                continue;
            };
            let name: String = field
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            match fields().position(|f| f == name) {
                Some(i) => read |= 1 << i,
                // Not a field: evaluation says so; read everything meanwhile.
                None => read = EVERY_FIELD,
            }
        }
        Self {
            fields: read,
            functions,
            iterates,
            account: explain::find_word(source, "account").is_some(),
        }
    }

    /// Whether `account` is read: the account must then be at hand.
    pub fn account(self) -> bool {
        self.account
    }

    /// What either reads.
    pub fn and(self, other: Self) -> Self {
        Self {
            fields: self.fields | other.fields,
            functions: self.functions | other.functions,
            iterates: self.iterates || other.iterates,
            account: self.account || other.account,
        }
    }

    /// What every one of `conditions` reads.
    pub fn of_all<'a>(conditions: impl IntoIterator<Item = &'a Condition>) -> Self {
        conditions
            .into_iter()
            .fold(Self::NOTHING, |reads, c| reads.and(c.reads))
    }

    const NOTHING: Self = Self {
        fields: 0,
        functions: 0,
        iterates: false,
        account: false,
    };

    #[cfg(test)]
    fn field(self, name: &str) -> bool {
        self.reads_field(name)
    }

    fn reads_field(self, name: &str) -> bool {
        fields()
            .position(|f| f == name)
            .is_some_and(|i| self.fields & (1 << i) != 0)
    }

    fn function(self, name: &str) -> bool {
        FUNCTIONS
            .iter()
            .position(|f| *f == name)
            .is_some_and(|i| self.functions & (1 << i) != 0)
    }
}

/// The variables and functions conditions see for one customer at one
/// instant. Building it converts the customer for CEL, which costs more than
/// evaluating a condition, so callers build one and evaluate many in it.
pub struct Scope {
    context: Context<'static, 'static>,
    /// Why conditions that go through lists must not be evaluated here:
    /// the customer's data is longer than they may go through.
    refused: Option<LimitError>,
}

impl Scope {
    /// A scope for conditions that read no more than `reads`.
    pub fn reading(facts: &Facts<'_>, reads: Reads) -> Result<Self, ConditionError> {
        let declare = |e: cel::DeclarationError| ConditionError::new(e.to_string());
        let mut context = Context::with_env(Arc::clone(stdlib()));
        context.add_variable_from_value("customer", customer_value(facts.customer, reads));
        context.add_variable_from_value("now", timestamp(facts.now));
        if let Some(account) = facts.account.filter(|_| reads.account) {
            context.add_variable_from_value("account", account_value(account));
        }
        let now = facts.now;
        if reads.function("days_since") {
            context
                .add_function("days_since", move |Arguments(args): Arguments| {
                    days_between(&args, "days_since", |t| now - t)
                })
                .map_err(declare)?;
        }
        if reads.function("days_until") {
            context
                .add_function("days_until", move |Arguments(args): Arguments| {
                    days_between(&args, "days_until", |t| t - now)
                })
                .map_err(declare)?;
        }
        if reads.function("event_count") {
            let events: Arc<Vec<(String, DateTime<Utc>)>> = Arc::new(facts.events.to_vec());
            context
                .add_function("event_count", move |Arguments(args): Arguments| {
                    event_count(&events, now, &args)
                })
                .map_err(declare)?;
        }
        if reads.function("sent") {
            let sent: Arc<HashSet<String>> = Arc::new(facts.sent.clone());
            context
                .add_function("sent", move |Arguments(args): Arguments| {
                    match args.as_slice() {
                        [Value::String(step)] => Ok(Value::Bool(sent.contains(step.as_str()))),
                        _ => Err(ExecutionError::function_error(
                            "sent",
                            "takes one step id, e.g. sent(\"welcome\")",
                        )),
                    }
                })
                .map_err(declare)?;
        }
        // Only conditions that go through lists pay for the check.
        let refused = (reads.iterates && reads.reads_field("attributes"))
            .then(|| guard::check_data(&facts.customer.record.attributes).err())
            .flatten()
            .or_else(|| {
                let account = facts.account.filter(|_| reads.iterates && reads.account)?;
                guard::check_data(&account.account.record.attributes).err()
            });
        Ok(Self { context, refused })
    }
}

/// What an alert rule's `when` sees of one response.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseFacts<'a> {
    pub kind: &'a str,
    /// The answer: a number where it reads as one (scores), else text.
    pub value: Option<&'a str>,
    /// The survey the answered message asked, if any.
    pub survey: Option<&'a str>,
    pub comment: Option<&'a str>,
}

impl ResponseFacts<'_> {
    fn value(&self) -> Value {
        let text =
            |s: Option<&str>| s.map_or(Value::Null, |s| Value::String(Arc::new(s.to_owned())));
        let value = match self.value.map(str::parse::<i64>) {
            Some(Ok(n)) => Value::Int(n),
            _ => text(self.value),
        };
        let map: std::collections::HashMap<String, Value> = [
            ("kind".to_owned(), text(Some(self.kind))),
            ("value".to_owned(), value),
            ("survey".to_owned(), text(self.survey)),
            ("comment".to_owned(), text(self.comment)),
        ]
        .into_iter()
        .collect();
        Value::Map(Map::from(map))
    }
}

impl Condition {
    /// Whether the condition holds for one response (`response.kind`,
    /// `response.value`, `response.survey`, `response.comment`).
    pub fn holds_for_response(&self, response: &ResponseFacts<'_>) -> Result<bool, ConditionError> {
        let mut context = Context::with_env(Arc::clone(stdlib()));
        context.add_variable_from_value("response", response.value());
        self.holds_in(&Scope {
            context,
            refused: None,
        })
    }
}

/// Compiles an alert rule's condition and tries it on a sample detractor
/// and a sample yes/no answer, as `tend check` does: a misspelt field or a
/// comparison that cannot be made is refused here, not at the first answer.
pub fn compile_for_response(source: &str) -> Result<Condition, String> {
    let condition = Condition::compile(source)?;
    let samples = [
        ResponseFacts {
            kind: "survey",
            value: Some("3"),
            survey: Some("nps"),
            comment: Some("too slow"),
        },
        ResponseFacts {
            kind: "reply",
            value: None,
            survey: None,
            comment: Some("thanks"),
        },
    ];
    for sample in &samples {
        if let Err(e) = condition.holds_for_response(sample)
            && (e.missing_key || e.undeclared.is_some())
        {
            return Err(format!(
                "{}; an alert condition reads response.kind, response.value, response.survey and response.comment",
                e.message
            ));
        }
    }
    Ok(condition)
}

/// Compiles `source` and evaluates it against a sample customer with every
/// field set, as `tend check` does: a condition that cannot be evaluated for
/// reasons other than an attribute the sample lacks is a mistake.
///
/// Every mistake found is reported, each under a picture of where it is:
/// fields of `customer` that do not exist, misspelt functions, and words
/// that are not names (usually text without quotes).
pub fn compile_checked(source: &str) -> Result<Condition, String> {
    let mut mistakes: Vec<explain::Mistake> = unknown_customer_fields(source)
        .into_iter()
        .map(|(at, field)| {
            let known: Vec<&str> = fields().collect();
            let reason = match crate::suggest::closest(&field, known.iter().copied()) {
                Some(near) => format!("customer.{field} is not a customer field; did you mean customer.{near}?"),
                None => format!(
                    "customer.{field} is not a customer field; use one of {} (custom data is under customer.attributes)",
                    known.join(", ")
                ),
            };
            explain::Mistake {
                at,
                width: field.chars().count().max(1),
                reason,
            }
        })
        .collect();
    mistakes.extend(
        unknown_account_fields(source)
            .into_iter()
            .map(|(at, field)| explain::Mistake {
                at,
                width: field.chars().count().max(1),
                reason: match crate::suggest::closest(&field, ACCOUNT_SEEN.iter().copied()) {
                    Some(near) => format!(
                        "account.{field} is not an account field; did you mean account.{near}?"
                    ),
                    None => format!(
                        "account.{field} is not an account field; use one of {} (custom data is under account.attributes)",
                        ACCOUNT_SEEN.join(", ")
                    ),
                },
            }),
    );
    let condition = match Condition::compile(source) {
        Ok(condition) => condition,
        Err(e) if mistakes.is_empty() => return Err(e),
        Err(_) => {
            return Err(explain::render(
                source,
                "the condition has mistakes:",
                mistakes,
            ));
        }
    };
    let references = condition.program.references();
    let bound = bound_variables(source);
    for name in references.variables() {
        if !VARIABLES.contains(&name) && !bound.iter().any(|b| b == name) {
            mistakes.extend(explain::unknown_name(
                source,
                name,
                explain::Unknown::Word { known: VARIABLES },
            ));
        }
    }
    for name in references.functions() {
        let misspelt = !FUNCTIONS.contains(&name)
            && crate::suggest::closest(name, FUNCTIONS.iter().copied()).is_some();
        if misspelt {
            mistakes.extend(explain::unknown_name(
                source,
                name,
                explain::Unknown::Function { known: FUNCTIONS },
            ));
        }
    }
    if !mistakes.is_empty() {
        return Err(explain::render(
            source,
            "the condition has mistakes:",
            mistakes,
        ));
    }
    let now = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(20_000);
    let sample = Customer::sample(now);
    let account = AccountFacts::sample(now);
    let facts = Facts {
        customer: &sample,
        account: Some(&account),
        now,
        events: &[],
        sent: &HashSet::new(),
    };
    match condition.holds(&facts) {
        Ok(_) => Ok(condition),
        Err(e) if e.missing_key => Ok(condition),
        Err(e) => match &e.undeclared {
            // A name CEL does not know when it runs: a function that is
            // not one (CEL's own are many, so only now is it known).
            Some(name) => {
                let kind = if is_called(source, name) {
                    explain::Unknown::Function { known: FUNCTIONS }
                } else {
                    explain::Unknown::Word { known: VARIABLES }
                };
                match explain::unknown_name(source, name, kind) {
                    Some(m) => Err(explain::render(
                        source,
                        "the condition has a mistake:",
                        vec![m],
                    )),
                    None => Err(e.message),
                }
            }
            None => Err(e.message),
        },
    }
}

/// The variables conditions see.
const VARIABLES: &[&str] = &["customer", "account", "now"];

/// Names a list macro binds (`tags.exists(t, t == "vip")` binds `t`).
fn bound_variables(source: &str) -> Vec<String> {
    let mut bound = Vec::new();
    for mac in ["exists_one(", "exists(", "all(", "map(", "filter("] {
        let mut rest = source;
        while let Some(at) = rest.find(mac) {
            rest = &rest[at + mac.len()..];
            let name: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                bound.push(name);
            }
        }
    }
    bound
}

/// Whether `name` is followed by `(` where it stands in `source`.
fn is_called(source: &str, name: &str) -> bool {
    explain::find_word(source, name)
        .is_some_and(|(at, _)| source[at + name.len()..].trim_start().starts_with('('))
}

/// What tend derives and conditions can read beside the record's fields.
const DERIVED_FIELDS: &[&str] = &["first_name", "stage"];

fn is_customer_field(name: &str) -> bool {
    fields().any(|f| f == name)
}

/// Every `customer.NAME` in `source` that is not a customer field, with the
/// offset of NAME: CEL would only say "no such key" when it runs, and only
/// for some customers.
pub fn unknown_customer_fields(source: &str) -> Vec<(usize, String)> {
    unknown_fields(source, "customer.", is_customer_field)
}

/// Whether `source` reads `customer` anywhere (not inside a string).
pub fn mentions_customer(source: &str) -> bool {
    source.match_indices("customer").any(|(at, word)| {
        let before = source[..at].chars().next_back();
        let after = source[at + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || "_.\"'".contains(c))
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Every `account.NAME` in `source` that is not an account field.
pub fn unknown_account_fields(source: &str) -> Vec<(usize, String)> {
    unknown_fields(source, "account.", |f| ACCOUNT_SEEN.contains(&f))
}

/// Every `VARIABLE.NAME` in `source` (`variable` ends with the dot) whose
/// NAME `known` does not take, with the offset of NAME.
fn unknown_fields(
    source: &str,
    variable: &str,
    known: impl Fn(&str) -> bool,
) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = source[from..].find(variable) {
        let start = from + at;
        from = start + variable.len();
        let before = source[..start].chars().next_back();
        if before
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '"' || c == '\'')
        {
            continue;
        }
        let field: String = source[from..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !known(&field) && !found.iter().any(|(_, f)| *f == field) {
            found.push((from, field));
        }
    }
    found
}

/// CEL's standard library, built once: building it declares hundreds of
/// overloads, which per evaluation cost more than the evaluation itself.
fn stdlib() -> &'static Arc<Env> {
    static STDLIB: OnceLock<Arc<Env>> = OnceLock::new();
    STDLIB.get_or_init(|| Arc::new(Env::stdlib()))
}

fn timestamp(t: DateTime<Utc>) -> Value {
    Value::Timestamp(t.fixed_offset())
}

fn optional_timestamp(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, timestamp)
}

/// The customer as CEL sees it: the fields `reads` names (a field left out
/// is one no condition in the scope reads).
fn customer_value(c: &Customer, reads: Reads) -> Value {
    let r = &c.record;
    let text = |s: &str| Value::String(Arc::new(s.to_owned()));
    let mut map: std::collections::HashMap<String, Value> = std::collections::HashMap::new();
    // By bit, not by name: this runs for every customer judged.
    let read = fields()
        .enumerate()
        .filter(|(i, _)| reads.fields & (1 << i) != 0)
        .map(|(_, name)| name);
    for name in read {
        let value = match name {
            "id" => text(r.id.as_str()),
            "email" => text(r.email.as_str()),
            "name" => text(&r.name),
            "first_name" => text(r.first_name()),
            "timezone" => text(r.timezone.name()),
            "locale" => text(&r.locale),
            "plan" => text(&r.plan),
            "signup_at" => optional_timestamp(r.signup_at),
            "renewal_at" => optional_timestamp(r.renewal_at),
            "last_seen_at" => optional_timestamp(r.last_seen_at),
            "health" => r.health.map_or(Value::Null, |h| Value::Int(i64::from(h))),
            "attributes" => cel::to_value(&r.attributes).unwrap_or(Value::Null),
            "stage" => c.stage.as_deref().map_or(Value::Null, text),
            "account_id" => r
                .account_id
                .as_ref()
                .map_or(Value::Null, |a| text(a.as_str())),
            "roles" => Value::List(Arc::new(r.roles.names().iter().map(|n| text(n)).collect())),
            "holidays" => r.availability.holidays.as_deref().map_or(Value::Null, text),
            "quiet_until" => optional_timestamp(r.availability.quiet_until),
            _ => continue,
        };
        map.insert(name.to_owned(), value);
    }
    Value::Map(Map::from(map))
}

/// The account as CEL sees it: every field of [`ACCOUNT_SEEN`].
fn account_value(context: &AccountFacts) -> Value {
    let Account {
        record: r,
        stage,
        stage_entered_at,
        contacts,
        ..
    } = &context.account;
    let text = |s: &str| Value::String(Arc::new(s.to_owned()));
    let owner = context.owner.as_ref().map_or(Value::Null, |o| {
        let mut map = std::collections::HashMap::new();
        map.insert("id".to_owned(), text(&o.id));
        map.insert("name".to_owned(), text(&o.name));
        map.insert("email".to_owned(), text(&o.email));
        Value::Map(Map::from(map))
    });
    let mut map: std::collections::HashMap<String, Value> = std::collections::HashMap::new();
    for name in ACCOUNT_SEEN {
        let value = match *name {
            "id" => text(r.id.as_str()),
            "name" => text(&r.name),
            "plan" => text(&r.plan),
            "renewal_at" => optional_timestamp(r.renewal_at),
            "health" => r.health.map_or(Value::Null, |h| Value::Int(i64::from(h))),
            "owner" => owner.clone(),
            "stage" => stage.as_deref().map_or(Value::Null, text),
            "stage_entered_at" => optional_timestamp(*stage_entered_at),
            "contacts" => Value::Int(i64::try_from(*contacts).unwrap_or(i64::MAX)),
            "attributes" => cel::to_value(&r.attributes).unwrap_or(Value::Null),
            _ => continue,
        };
        map.insert((*name).to_owned(), value);
    }
    Value::Map(Map::from(map))
}

/// Whole days between `now` and a timestamp argument, by `diff`.
fn days_between(
    args: &[Value],
    name: &str,
    diff: impl Fn(DateTime<Utc>) -> chrono::Duration,
) -> Result<Value, ExecutionError> {
    match args {
        [Value::Timestamp(t)] => Ok(Value::Int(diff(t.with_timezone(&Utc)).num_days())),
        [Value::Null] => Err(ExecutionError::function_error(
            name,
            "the date is not set for this customer",
        )),
        _ => Err(ExecutionError::function_error(
            name,
            "takes one date, e.g. customer.signup_at",
        )),
    }
}

fn event_count(
    events: &[(String, DateTime<Utc>)],
    now: DateTime<Utc>,
    args: &[Value],
) -> Result<Value, ExecutionError> {
    let (name, since) = match args {
        [Value::String(name)] => (name, None),
        [Value::String(name), Value::String(window)] => {
            let span: Span = window
                .parse()
                .map_err(|e: String| ExecutionError::function_error("event_count", e))?;
            (name, Some(now - span.as_chrono()))
        }
        _ => {
            return Err(ExecutionError::function_error(
                "event_count",
                "takes an event name and an optional window, e.g. event_count(\"login\", \"7d\")",
            ));
        }
    };
    let count = events
        .iter()
        .filter(|(n, at)| n == name.as_str() && *at <= now && since.is_none_or(|s| *at > s))
        .count();
    Ok(Value::Int(count as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::customer::{CustomerId, CustomerRecord, Email};
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
    }

    fn customer() -> Customer {
        Customer {
            record: CustomerRecord {
                id: CustomerId::parse("c1").unwrap(),
                email: Email::parse("ana@example.com").unwrap(),
                name: "Ana Silva".into(),
                timezone: chrono_tz::Europe::Lisbon,
                locale: "pt-PT".into(),
                plan: "pro".into(),
                signup_at: Some(now() - chrono::Duration::days(3)),
                renewal_at: Some(now() + chrono::Duration::days(20)),
                last_seen_at: None,
                health: Some(35),
                attributes: json!({"features": ["api"], "region": "eu", "seats": 4})
                    .as_object()
                    .unwrap()
                    .clone(),
                account_id: None,
                roles: Default::default(),
                availability: Default::default(),
            },
            stage: Some("onboarding".into()),
            stage_entered_at: None,
            created_at: now(),
            updated_at: now(),
            account_availability: Default::default(),
        }
    }

    fn holds(source: &str) -> Result<bool, String> {
        let c = customer();
        let events = vec![
            ("login".to_owned(), now() - chrono::Duration::days(1)),
            ("login".to_owned(), now() - chrono::Duration::days(9)),
            ("export".to_owned(), now() - chrono::Duration::days(2)),
        ];
        let sent: HashSet<String> = ["welcome".to_owned()].into();
        let facts = Facts {
            customer: &c,
            account: None,
            now: now(),
            events: &events,
            sent: &sent,
        };
        Condition::compile(source)?
            .holds(&facts)
            .map_err(|e| e.message)
    }

    #[test]
    fn a_condition_mentions_customer_only_as_the_variable() {
        assert!(mentions_customer("customer.plan == \"pro\""));
        assert!(mentions_customer("days_since(customer.signup_at) > 3"));
        assert!(!mentions_customer("account.attributes.customer == \"x\""));
        assert!(!mentions_customer("account.attributes.customers > 3"));
        assert!(!mentions_customer("account.plan == \"customer\""));
        assert!(!mentions_customer("account.plan == 'customer'"));
    }

    #[test]
    fn a_condition_reads_only_the_fields_and_functions_it_names() {
        let reads = |source: &str| Condition::compile(source).unwrap().reads();
        let r = reads(r#"customer.plan == "pro" && days_since(customer.signup_at) > 3"#);
        assert!(r.field("plan") && r.field("signup_at"));
        assert!(!r.field("attributes") && !r.field("email") && !r.field("stage"));
        assert!(r.function("days_since") && !r.function("event_count") && !r.function("sent"));
        let r = reads(r#"customer . attributes.region == "eu""#);
        assert!(r.field("attributes") && !r.field("plan"));
        // The whole customer, however it is reached, reads everything.
        for whole in [
            r#"customer["plan"] == "pro""#,
            "size(customer) > 3",
            "[1].exists(customer, customer > 0)",
        ] {
            assert_eq!(reads(whole).fields, EVERY_FIELD, "{whole}");
        }
        // Every field a condition may name is one the scope can build.
        for field in RECORD_FIELDS.iter().chain(DERIVED_FIELDS) {
            assert!(
                fields().position(|f| f == *field).is_some_and(|i| i < 32),
                "{field}"
            );
        }
        // The same answers whichever way the scope was built.
        for source in [
            "customer.health == 35",
            r#"customer.first_name == "Ana" && customer.stage == "onboarding""#,
            r#"sent("welcome") && event_count("login", "7d") == 1"#,
            r#"customer.attributes.seats > 3 && days_until(customer.renewal_at) == 20"#,
        ] {
            assert_eq!(holds(source), Ok(true), "{source}");
        }
    }

    #[test]
    fn variables_and_functions() {
        for yes in [
            r#"customer.plan != "free""#,
            r#"!("dashboards" in customer.attributes.features)"#,
            r#""api" in customer.attributes.features && customer.attributes.region == "eu""#,
            "days_since(customer.signup_at) == 3",
            "days_until(customer.renewal_at) <= 30",
            "customer.health < 40 && customer.attributes.seats > 3",
            r#"event_count("login") == 2 && event_count("login", "7d") == 1"#,
            r#"sent("welcome") && !sent("tips")"#,
            r#"customer.stage == "onboarding" && customer.first_name == "Ana""#,
            "now > customer.signup_at",
        ] {
            assert_eq!(holds(yes), Ok(true), "{yes}");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = holds("customer.plan ==").unwrap_err();
        assert!(e.contains("does not parse"), "{e}");
        let e = holds("customer.plann == \"pro\"").unwrap_err();
        assert!(e.contains("cannot be evaluated"), "{e}");
        let c = customer();
        let facts = Facts {
            customer: &c,
            account: None,
            now: now(),
            events: &[],
            sent: &HashSet::new(),
        };
        let missing = Condition::compile("customer.attributes.tier == \"gold\"")
            .unwrap()
            .holds(&facts)
            .unwrap_err();
        assert!(missing.missing_key, "{missing}");
        let e = holds("customer.plan").unwrap_err();
        assert!(e.contains("not true or false"), "{e}");
        let e = holds("days_since(customer.last_seen_at) > 3").unwrap_err();
        assert!(e.contains("not set"), "{e}");
        let e = holds(r#"event_count("login", "a week") > 0"#).unwrap_err();
        assert!(e.contains("not a length of time"), "{e}");
    }

    /// `[1, 2, … n]`.
    fn numbers(n: usize) -> String {
        let items: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
        format!("[{}]", items.join(","))
    }

    #[test]
    fn each_limit_refuses_with_the_value_found_and_what_to_do() {
        let e =
            Condition::compile(&format!("customer.plan == \"{}\"", "x".repeat(5000))).unwrap_err();
        assert!(
            e.contains("5019 bytes") && e.contains("limit of 4096") && e.contains("shorten"),
            "{e}"
        );

        let deep = format!("{}customer.health > 1{}", "(".repeat(40), ")".repeat(40));
        let e = Condition::compile(&deep).unwrap_err();
        assert!(
            e.contains("brackets 40 deep") && e.contains("limit of 32") && e.contains("column 33"),
            "{e}"
        );
        // Brackets in strings and comments are text, not nesting.
        let quoted = format!(
            "customer.name != \"{}\" && customer.name != '{}' // {}\n&& customer.name != r\"\\{}\"",
            "(".repeat(40),
            "[".repeat(40),
            "{".repeat(40),
            "(".repeat(40)
        );
        assert_eq!(holds(&quoted), Ok(true), "{quoted}");
        let e = holds(&format!("{}true{}", "[".repeat(33), "]".repeat(33))).unwrap_err();
        assert!(e.contains("brackets 33 deep"), "{e}");

        let list = numbers(10);
        let four = format!(
            "{list}.all(a, {list}.all(b, {list}.all(c, {list}.exists(d, a + b + c + d == 0))))"
        );
        let e = Condition::compile(&four).unwrap_err();
        assert!(
            e.contains("nests 4 list macros") && e.contains("limit of 2") && e.contains("budget"),
            "{e}"
        );
        let e = Condition::compile(&format!(
            "{list}.all(a, {list} . exists (b, {list}.map(c, c).size() > 0))"
        ))
        .unwrap_err();
        assert!(e.contains("nests 3 list macros"), "{e}");
        // Chained macros are not nested, nor are macros inside a list.
        for fine in [
            format!("{list}.map(a, a * 2).filter(b, b > 4).all(c, c > 4)"),
            format!("[{list}.exists(a, a == 1), {list}.exists(b, b == 2)].all(x, x)"),
            format!("{list}.all(a, {list}.exists(b, a == b))"),
            r#"customer.attributes.features.exists(f, f == "api")"#.to_owned(),
        ] {
            assert_eq!(holds(&fine), Ok(true), "{fine}");
        }

        let chain = format!("{} == 150", vec!["1"; 150].join(" + "));
        let e = Condition::compile(&chain).unwrap_err();
        assert!(
            e.contains("operators 151 deep") && e.contains("limit of 100"),
            "{e}"
        );
        // && and || chains are balanced: many alternatives are not deep.
        let alternatives: Vec<String> = (0..100)
            .map(|i| format!("customer.health == {i}"))
            .collect();
        assert_eq!(holds(&alternatives.join(" || ")), Ok(true));

        // Two macros over lists of 300 literals: 90,000 bodies.
        let big = numbers(300);
        let e = Condition::compile(&format!("{big}.all(a, {big}.exists(b, a == b))")).unwrap_err();
        assert!(
            e.contains("over the budget of 100000") && e.contains("steps"),
            "{e}"
        );
        // Two over customer data, counted at 1,000 elements each.
        let e = Condition::compile(
            "customer.attributes.features.all(a, customer.attributes.features.exists(b, a == b))",
        )
        .unwrap_err();
        assert!(e.contains("budget"), "{e}");
        // A list held inside a list is as long as written.
        let e = Condition::compile(&format!(
            "[{big}].all(l, l.all(a, {list}.exists(b, a == b)))"
        ))
        .unwrap_err();
        assert!(e.contains("budget"), "{e}");
        // So is one a loop builds, and the longest list it may hold counts.
        let built = format!(
            "[1].map(x, {}).exists(l, l.exists(a, a == 1))",
            ["customer.attributes.features"; 3].join(" + ")
        );
        let e = Condition::compile(&built).unwrap_err();
        assert!(e.contains("budget"), "{e}");
        // One macro over customer data inside one over a short list fits.
        let fits = r#"["api", "sso"].all(f, customer.attributes.features.exists(g, g == f))"#;
        assert_eq!(holds(fits), Ok(false));
    }

    #[test]
    fn customer_data_too_long_to_go_through_fails_only_conditions_that_go_through_it() {
        let mut c = customer();
        let long: Vec<String> = (0..1001).map(|i| format!("f{i}")).collect();
        c.record.attributes.insert("features".into(), json!(long));
        let facts = Facts {
            customer: &c,
            account: None,
            now: now(),
            events: &[],
            sent: &HashSet::new(),
        };
        let through =
            Condition::compile(r#"customer.attributes.features.exists(f, f == "f3")"#).unwrap();
        let plain = Condition::compile(r#""f3" in customer.attributes.features"#).unwrap();
        let scope = Scope::reading(&facts, through.reads().and(plain.reads())).unwrap();
        let e = through.holds_in(&scope).unwrap_err();
        assert!(e.guarded, "{e}");
        assert!(
            e.message
                .contains("customer.attributes.features holds 1001 elements")
                && e.message.contains("1000"),
            "{e}"
        );
        assert!(!through.holds_for(&scope, "c1"));
        assert_eq!(plain.holds_in(&scope), Ok(true));
        // A list within the bound is gone through.
        c.record
            .attributes
            .insert("features".into(), json!(long[..1000]));
        let facts = Facts {
            customer: &c,
            account: None,
            now: now(),
            events: &[],
            sent: &HashSet::new(),
        };
        assert_eq!(through.holds(&facts), Ok(true));
    }

    /// Inputs that once broke the parser, or that come close to it.
    fn nasty() -> Vec<String> {
        vec![
            "(".repeat(100_000),
            format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000)),
            format!("{}true", "!".repeat(100_000)),
            format!("{}1", "-".repeat(100_000)),
            format!("\"{}\" == customer.name", "a".repeat(1_000_000)),
            format!("customer{}", ".a".repeat(100_000)),
            format!("{}.size() > 0", "[".repeat(50_000)),
            "{".repeat(100_000),
            r#""\ud800" == customer.name"#.into(),
            r#""\uDFFF\uD800" == customer.name"#.into(),
            r#"b"\ud800" == b"""#.into(),
            "\"\\U0010FFFF\\U00110000\" == customer.name".into(),
            "\"unclosed".into(),
            "\"\"\"".into(),
            "customer.name == \"\\".into(),
            "\u{feff}\u{0}".into(),
        ]
    }

    fn a_good_condition_still_works() {
        assert_eq!(
            holds(r#"customer.plan == "pro" && customer.health < 40"#),
            Ok(true)
        );
    }

    #[test]
    fn the_parser_survives_nasty_input() {
        let _guard = disruption::begin();
        for input in nasty() {
            let shown: String = input.chars().take(40).collect();
            assert!(Condition::compile(&input).is_err(), "{shown}");
            a_good_condition_still_works();
            // The parser itself sees only what passes the scan, at most
            // `MAX_LENGTH` bytes: whatever it makes of those (`!!…!true`
            // is `true`), it answers, and the next condition still parses.
            let mut end = input.len().min(guard::MAX_LENGTH);
            while !input.is_char_boundary(end) {
                end -= 1;
            }
            if guard::scan(&input[..end]).is_ok() {
                let _ = parse(&input[..end]);
                a_good_condition_still_works();
            }
        }
    }

    #[test]
    fn a_panic_formatting_a_parse_error_fails_that_condition_only() {
        let _guard = disruption::begin();
        // 100,000 brackets straight to the parser, past the scan: `cel`
        // 0.15 panics formatting its error, and that panic is caught.
        for input in [
            "(".repeat(100_000),
            format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000)),
        ] {
            assert!(!matches!(parse(&input), Ok(Ok(_))));
            a_good_condition_still_works();
        }
    }

    #[test]
    fn a_parser_thread_that_ends_is_replaced() {
        let _guard = disruption::begin();
        /// A panic payload that panics again when dropped, with one that
        /// does the same: it escapes both `catch_unwind`s and ends the
        /// thread.
        struct Bomb(u8);
        impl Drop for Bomb {
            fn drop(&mut self) {
                if self.0 > 0 {
                    std::panic::panic_any(Bomb(self.0 - 1));
                }
            }
        }
        a_good_condition_still_works();
        let before = PARSER.lock().unwrap().generation;
        // The first run ends the thread; the caller is answered from the
        // next one.
        let ended = std::sync::atomic::AtomicBool::new(false);
        let answer = on_parser_thread(move || {
            if !ended.swap(true, std::sync::atomic::Ordering::SeqCst) {
                std::panic::panic_any(Bomb(2));
            }
            "answered"
        });
        assert_eq!(answer, Ok("answered"));
        assert!(PARSER.lock().unwrap().generation > before);
        a_good_condition_still_works();
        // Work that ends every thread it runs on fails, and only itself.
        let killed = on_parser_thread(|| std::panic::panic_any(Bomb(2)));
        assert_eq!(killed.err().as_deref(), Some(PARSER_FAILED));
        a_good_condition_still_works();
    }

    #[test]
    fn a_panic_while_evaluating_fails_that_evaluation_only() {
        let c = customer();
        let facts = Facts {
            customer: &c,
            account: None,
            now: now(),
            events: &[],
            sent: &HashSet::new(),
        };
        let condition = Condition::compile("boom() || customer.health == 35").unwrap();
        let mut scope = Scope::reading(&facts, condition.reads()).unwrap();
        scope
            .context
            .add_function("boom", || -> bool { panic!("the evaluator failed") })
            .unwrap();
        let e = condition.holds_in(&scope).unwrap_err();
        assert!(
            e.guarded && e.message.contains("made the CEL evaluator fail"),
            "{e}"
        );
        assert!(!condition.holds_for(&scope, "c1"));
        a_good_condition_still_works();
    }
}
