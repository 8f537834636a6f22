//! Import of customers, accounts and events from CSV or JSONL files: streamed row by
//! row, validated, written in batches. Bad rows are reported with their line
//! and skipped; good rows are kept.

pub mod record;
pub mod segment;
pub mod source;

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use futures_util::future::join_all;

use crate::domain::account::{AccountId, AccountRecord};
use crate::domain::customer::CustomerRecord;
use crate::domain::event::EventRecord;
use crate::domain::timestamp::parse_instant;
use crate::store::{self, Accounts, Customers};
use record::{CsvLayout, PendingEvent};
pub use record::{Defaults, Kind};
use source::{Fields, Format, Rows, SourceError};

/// Records written per transaction: large enough that commits (each one a
/// durable fsync) are a small part of the cost.
const BATCH: usize = 2000;

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    pub imported: u64,
    pub updated: u64,
    pub rejected: u64,
}

/// What a person should know about one row: why it was not imported, or
/// (`kept`) what was done about it when it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowNote {
    pub line: usize,
    pub reason: String,
    /// The row was imported; this is a warning.
    pub kept: bool,
}

impl RowNote {
    fn rejected(line: usize, reason: String) -> Self {
        Self {
            line,
            reason,
            kept: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot open {}: {source}; check the path", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: cannot tell the file's format from its name; name it .csv or .jsonl", .0.display())]
    Format(PathBuf),
    #[error("{}:{line}: {message}", path.display())]
    Header {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: reading stopped ({message}); the rows counted above were kept", path.display())]
    Read {
        path: PathBuf,
        message: String,
        so_far: ImportOutcome,
    },
    #[error("the import stopped: {source}; the rows counted above were kept")]
    Store {
        source: store::Error,
        so_far: ImportOutcome,
    },
}

impl ImportError {
    /// What was imported before the failure, when some rows may have been.
    pub fn so_far(&self) -> Option<ImportOutcome> {
        match self {
            Self::Read { so_far, .. } | Self::Store { so_far, .. } => Some(*so_far),
            _ => None,
        }
    }
}

/// Something that wants to know how far the import has got (a progress bar).
pub trait Progress {
    fn start(&self, total_bytes: u64);
    fn advance(&self, bytes_read: u64);
    fn finish(&self);
}

/// No progress display.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Imports one file of `kind` into the store.
///
/// Three stages work at once: a reader thread parses and validates batches
/// (the file's blocking reads stay off the async runtime), this task checks
/// the next batches against the store (erased people, unknown accounts), and
/// meanwhile writes the ones checked before them: in the file's order, and
/// several at once only where the store takes several writers and the
/// batches are apart ([`Ready::apart`]), so a row repeated later in the file
/// wins. What is said about a batch's rows is said once it is written.
/// Should a write fail beside another, the other's rows stay written and
/// are counted.
pub async fn import_file(
    store: &(impl Customers + Accounts),
    kind: Kind,
    path: &Path,
    defaults: &Defaults,
    now: DateTime<Utc>,
    progress: &dyn Progress,
    mut on_reject: impl FnMut(RowNote),
) -> Result<ImportOutcome, ImportError> {
    let format = Format::of(path).ok_or_else(|| ImportError::Format(path.to_owned()))?;
    let file = File::open(path).map_err(|source| ImportError::Open {
        path: path.to_owned(),
        source,
    })?;
    progress.start(file.metadata().map(|m| m.len()).unwrap_or(0));
    let header_error = |line, message| ImportError::Header {
        path: path.to_owned(),
        line,
        message,
    };
    let rows = Rows::open(file, format).map_err(|e| match e {
        SourceError::Header { line, message } => header_error(line, message),
        SourceError::Read(message) => header_error(1, message),
    })?;
    let layout = match format {
        Format::Csv => Some(CsvLayout::new(rows.header(), kind).map_err(|m| header_error(1, m))?),
        Format::Jsonl => None,
    };

    // Two batches parsed ahead at most, and a few checked or being written:
    // memory stays flat in the file's size.
    let (sender, mut receiver) = tokio::sync::mpsc::channel(2);
    let reader = {
        let defaults = defaults.clone();
        std::thread::spawn(move || read_batches(rows, layout, kind, &defaults, &sender))
    };
    let writers = store.writers().max(1);
    let mut outcome = ImportOutcome::default();
    let mut created = HashSet::new();
    // Checked batches not yet written, in the file's order.
    let mut waiting: VecDeque<Waiting> = VecDeque::new();
    let mut ended = false;
    let result = loop {
        let writing = next_to_write(&mut waiting, writers);
        if writing.is_empty() && ended {
            break Ok(());
        }
        let room = if ended {
            0
        } else {
            writers.saturating_sub(waiting.len())
        };
        let write = join_all(writing.iter().map(|w| w.ready.write(store, now)));
        let check = check_batches(&mut receiver, store, defaults.strict, &created, room);
        let (written, checked) = tokio::join!(write, check);
        ended |= checked.ended;
        // What was written counts, and its notes are told, even beside a
        // batch that failed; the rows the reader refused are refused
        // whatever the store says, and what else was found of a batch not
        // written is not told.
        let mut failed = None;
        for (batch, written) in writing.into_iter().zip(written) {
            let notes = match written {
                Ok(written) => {
                    outcome.imported += written.inserted;
                    outcome.updated += written.existing;
                    progress.advance(batch.position);
                    batch.notes
                }
                Err(source) => {
                    failed = failed.or(Some(source));
                    batch.refused
                }
            };
            for note in notes {
                outcome.rejected += u64::from(!note.kept);
                on_reject(note);
            }
            // Freeing a batch's records (allocated by the reader thread)
            // off this task, which writes the next ones.
            let ready = batch.ready;
            tokio::task::spawn_blocking(move || drop(ready));
        }
        created.extend(checked.created);
        waiting.extend(checked.batches);
        let (check_failed, check_refused) = match checked.failed {
            None => (None, Vec::new()),
            Some((refused, source)) => (Some(source), refused),
        };
        if let Some(source) = failed.or(check_failed) {
            let refused = waiting.drain(..).map(|w| w.refused);
            for note in refused.chain([check_refused]).flatten() {
                outcome.rejected += 1;
                on_reject(note);
            }
            break Err(ImportError::Store {
                source,
                so_far: outcome,
            });
        }
    };
    // Dropping the receiver stops a reader still at work.
    drop(receiver);
    let read = reader
        .join()
        .unwrap_or_else(|_| Err("the reader thread failed".into()));
    progress.finish();
    result?;
    read.map_err(|message| ImportError::Read {
        path: path.to_owned(),
        message,
        so_far: outcome,
    })?;
    Ok(outcome)
}

/// A row parsed into a JSON object, with the number that names it in errors.
pub type NumberedRow = (usize, serde_json::Map<String, serde_json::Value>);

/// Imports rows already parsed into JSON objects (the ingestion API's
/// batches), with the same validation and per-row errors as a file. Each row
/// comes with the number that names it in an error (its line, or its place
/// in a JSON array).
pub async fn import_rows(
    store: &(impl Customers + Accounts),
    kind: Kind,
    rows: Vec<NumberedRow>,
    defaults: &Defaults,
    now: DateTime<Utc>,
    mut on_reject: impl FnMut(RowNote),
) -> Result<ImportOutcome, ImportError> {
    let mut outcome = ImportOutcome::default();
    let mut created = HashSet::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut batch = Batch::new(kind);
        for (line, map) in rows.by_ref().take(BATCH) {
            if let Err(reason) = batch.push(line, map, defaults) {
                outcome.rejected += 1;
                on_reject(RowNote::rejected(line, reason));
            }
        }
        let stored = |source, so_far| ImportError::Store { source, so_far };
        let checked = batch
            .check(store, defaults.strict, &|a: &AccountId| created.contains(a))
            .await
            .map_err(|e| stored(e, outcome))?;
        for note in checked.notes {
            outcome.rejected += u64::from(!note.kept);
            on_reject(note);
        }
        created.extend(checked.created);
        let written = checked
            .ready
            .write(store, now)
            .await
            .map_err(|e| stored(e, outcome))?;
        outcome.imported += written.inserted;
        outcome.updated += written.existing;
    }
    Ok(outcome)
}

/// One batch as the reader thread hands it over.
struct Parsed {
    batch: Batch,
    rejected: Vec<RowNote>,
    /// Bytes of the file read so far.
    position: u64,
}

/// Reads and validates the file, sending batches until it ends, the file
/// cannot be read further (`Err`), or the receiver is gone.
fn read_batches(
    mut rows: Rows<File>,
    layout: Option<CsvLayout>,
    kind: Kind,
    defaults: &Defaults,
    sender: &tokio::sync::mpsc::Sender<Parsed>,
) -> Result<(), String> {
    let fresh = || Parsed {
        batch: Batch::new(kind),
        rejected: Vec::new(),
        position: 0,
    };
    let mut parsed = fresh();
    loop {
        let row = rows.next_row().map_err(|e| e.to_string());
        let row = match row {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(e) => {
                parsed.position = rows.position();
                let _ = sender.blocking_send(parsed);
                return Err(e);
            }
        };
        let map = row.fields.map(|fields| match (fields, &layout) {
            (Fields::Csv(values), Some(layout)) => layout.to_json(values),
            (Fields::Json(map), _) => map,
            (Fields::Csv(_), None) => unreachable!("CSV rows only come from a CSV file"),
        });
        if let Err(reason) = map.and_then(|map| parsed.batch.push(row.line, map, defaults)) {
            parsed.rejected.push(RowNote::rejected(row.line, reason));
        }
        if parsed.batch.len() >= BATCH {
            parsed.position = rows.position();
            if sender
                .blocking_send(std::mem::replace(&mut parsed, fresh()))
                .is_err()
            {
                return Ok(()); // the writer stopped; it reports why
            }
        }
    }
    parsed.position = rows.position();
    let _ = sender.blocking_send(parsed);
    Ok(())
}

/// Validated rows waiting to be checked against the store.
enum Batch {
    /// The records and, beside them, their lines and the hashes of their
    /// addresses (what an erased person is known by).
    Customers {
        records: Vec<CustomerRecord>,
        lines: Vec<usize>,
        hashes: Vec<String>,
    },
    Accounts(Vec<AccountRecord>),
    Events(Vec<(usize, PendingEvent)>),
}

/// A batch checked against the store: what to write, what to tell about
/// its rows, and the accounts writing it creates.
struct Checked {
    ready: Ready,
    notes: Vec<RowNote>,
    created: Vec<AccountId>,
}

/// The first waiting batch, and beside it the next ones while the store
/// takes several writers and each is apart from the others
/// ([`Ready::apart`]); taken off `waiting`, in the file's order.
fn next_to_write(waiting: &mut VecDeque<Waiting>, writers: usize) -> Vec<Waiting> {
    let mut writing: Vec<Waiting> = Vec::new();
    while let Some(front) = waiting.front() {
        if writing.len() == writers || !writing.iter().all(|w| w.ready.apart(&front.ready)) {
            break;
        }
        writing.extend(waiting.pop_front());
    }
    writing
}

/// What one round of checking found.
struct Checking {
    /// Checked batches, in the file's order.
    batches: Vec<Waiting>,
    /// Accounts the batches create (counted as known by the later ones).
    created: HashSet<AccountId>,
    /// The reader sent its last batch.
    ended: bool,
    /// The store failed on a batch: the rows the reader refused in it, and
    /// the error.
    failed: Option<(Vec<RowNote>, store::Error)>,
}

/// Checks up to `room` parsed batches against the store, in turn: an
/// account created by an earlier batch (`created`, or one checked here) is
/// known to the later ones.
async fn check_batches(
    receiver: &mut tokio::sync::mpsc::Receiver<Parsed>,
    store: &(impl Customers + Accounts),
    strict: bool,
    created: &HashSet<AccountId>,
    room: usize,
) -> Checking {
    let mut checking = Checking {
        batches: Vec::new(),
        created: HashSet::new(),
        ended: false,
        failed: None,
    };
    while checking.batches.len() < room {
        let Some(parsed) = receiver.recv().await else {
            checking.ended = true;
            break;
        };
        let made = |a: &AccountId| created.contains(a) || checking.created.contains(a);
        match parsed.batch.check(store, strict, &made).await {
            Ok(batch) => {
                checking.created.extend(batch.created);
                let mut notes = parsed.rejected.clone();
                notes.extend(batch.notes);
                checking.batches.push(Waiting {
                    ready: batch.ready,
                    position: parsed.position,
                    notes,
                    refused: parsed.rejected,
                });
            }
            Err(e) => {
                checking.failed = Some((parsed.rejected, e));
                break;
            }
        }
    }
    checking
}

/// A checked batch waiting to be written, with what to say about its rows
/// once it is (`notes`) or, should the import stop first, only the rows
/// the reader refused (`refused`).
struct Waiting {
    ready: Ready,
    /// Bytes of the file read up to the batch's end.
    position: u64,
    notes: Vec<RowNote>,
    refused: Vec<RowNote>,
}

/// Rows ready to be written.
enum Ready {
    Customers(Vec<CustomerRecord>),
    Accounts(Vec<AccountRecord>),
    Events(Vec<EventRecord>),
}

impl Batch {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Customers => Self::Customers {
                records: Vec::with_capacity(BATCH),
                lines: Vec::with_capacity(BATCH),
                hashes: Vec::with_capacity(BATCH),
            },
            Kind::Accounts => Self::Accounts(Vec::with_capacity(BATCH)),
            Kind::Events => Self::Events(Vec::with_capacity(BATCH)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Customers { records, .. } => records.len(),
            Self::Accounts(v) => v.len(),
            Self::Events(v) => v.len(),
        }
    }

    fn push(
        &mut self,
        line: usize,
        map: serde_json::Map<String, serde_json::Value>,
        defaults: &Defaults,
    ) -> Result<(), String> {
        match self {
            Self::Customers {
                records,
                lines,
                hashes,
            } => {
                let record = record::customer(map, defaults)?;
                hashes.push(crate::privacy::address_hash(record.email.as_str()));
                records.push(record);
                lines.push(line);
            }
            Self::Accounts(v) => v.push(record::account(map, defaults)?),
            Self::Events(v) => v.push((line, record::event(map)?)),
        }
        Ok(())
    }

    /// Checks the batch against the store: refuses erased people's
    /// addresses and resolves accounts that are not stored (`created`
    /// holds those an earlier batch of the same import creates), and
    /// events' customers.
    async fn check(
        self,
        store: &(impl Customers + Accounts),
        strict: bool,
        created: &impl Fn(&AccountId) -> bool,
    ) -> Result<Checked, store::Error> {
        let mut notes = Vec::new();
        let (ready, created) = match self {
            Self::Customers {
                records,
                lines,
                hashes,
            } => {
                let (records, lines) =
                    not_erased(store, records, lines, &hashes, &mut notes).await?;
                let unknown = unknown_accounts(store, &records, created).await?;
                let (records, created) =
                    accounts_resolved(records, &lines, &unknown, strict, &mut notes);
                (Ready::Customers(records), created)
            }
            Self::Accounts(records) => (Ready::Accounts(records), Vec::new()),
            Self::Events(batch) => {
                let records = resolve_events(store, batch, &mut notes).await?;
                (Ready::Events(records), Vec::new())
            }
        };
        Ok(Checked {
            ready,
            notes,
            created,
        })
    }
}

impl Ready {
    /// Whether two batches may be written at once, each in a transaction
    /// of its own: people only, no one in both (the later row must win),
    /// and no account named in either (writing contacts creates and marks
    /// their accounts, and two writers marking the same accounts could
    /// each wait on the other). Writing people already stored also marks
    /// the accounts they belonged to: should two such writes lock the same
    /// accounts crosswise, the store writes the one the server undid again.
    fn apart(&self, other: &Ready) -> bool {
        let (Self::Customers(a), Self::Customers(b)) = (self, other) else {
            return false;
        };
        let names_account = |v: &[CustomerRecord]| v.iter().any(|c| c.account_id.is_some());
        if names_account(a) || names_account(b) {
            return false;
        }
        let ids: HashSet<&str> = a.iter().map(|c| c.id.as_str()).collect();
        !b.iter().any(|c| ids.contains(c.id.as_str()))
    }

    async fn write(
        &self,
        store: &(impl Customers + Accounts),
        now: DateTime<Utc>,
    ) -> Result<store::WriteOutcome, store::Error> {
        match self {
            Self::Customers(batch) if !batch.is_empty() => store.upsert_customers(batch, now).await,
            Self::Accounts(batch) if !batch.is_empty() => store.upsert_accounts(batch, now).await,
            Self::Events(batch) if !batch.is_empty() => store.insert_events(batch, now).await,
            _ => Ok(store::WriteOutcome::default()),
        }
    }
}

/// The rows of a batch whose address is not an erased person's, with
/// their lines: the others are refused (an erased person is never stored,
/// nor mailed, again).
async fn not_erased(
    store: &impl Customers,
    records: Vec<CustomerRecord>,
    lines: Vec<usize>,
    hashes: &[String],
    notes: &mut Vec<RowNote>,
) -> Result<(Vec<CustomerRecord>, Vec<usize>), store::Error> {
    if records.is_empty() {
        return Ok((records, lines));
    }
    let erased = store.erased_among(hashes).await?;
    if erased.is_empty() {
        return Ok((records, lines));
    }
    let mut kept = (
        Vec::with_capacity(records.len()),
        Vec::with_capacity(records.len()),
    );
    for ((record, line), hash) in records.into_iter().zip(lines).zip(hashes) {
        if erased.contains(hash) {
            notes.push(RowNote::rejected(
                line,
                format!(
                    "{} belongs to a person erased at their request; tend keeps it only to refuse it, and never imports or mails it again",
                    record.email
                ),
            ));
        } else {
            kept.0.push(record);
            kept.1.push(line);
        }
    }
    Ok(kept)
}

/// The accounts `batch` names that are neither stored nor created by an
/// earlier batch of the same import (`created`).
async fn unknown_accounts(
    store: &impl Accounts,
    batch: &[CustomerRecord],
    created: &impl Fn(&AccountId) -> bool,
) -> Result<HashSet<AccountId>, store::Error> {
    let mut named: Vec<AccountId> = batch
        .iter()
        .filter_map(|c| c.account_id.clone())
        .filter(|a| !created(a))
        .collect();
    if named.is_empty() {
        return Ok(HashSet::new());
    }
    named.sort_unstable();
    named.dedup();
    let known = store.known_accounts(&named).await?;
    Ok(named.into_iter().filter(|a| !known.contains(a)).collect())
}

/// What becomes of contacts naming an account that is not stored: with
/// `strict`, each is rejected; otherwise each is kept (the store creates the
/// account with only its id) and the first row naming it says so. Returns
/// the rows kept and the accounts writing them creates.
fn accounts_resolved(
    batch: Vec<CustomerRecord>,
    lines: &[usize],
    unknown: &HashSet<AccountId>,
    strict: bool,
    notes: &mut Vec<RowNote>,
) -> (Vec<CustomerRecord>, Vec<AccountId>) {
    if unknown.is_empty() {
        return (batch, Vec::new());
    }
    let mut told = HashSet::new();
    let mut kept = Vec::with_capacity(batch.len());
    for (record, line) in batch.into_iter().zip(lines) {
        let Some(account) = record.account_id.as_ref().filter(|a| unknown.contains(*a)) else {
            kept.push(record);
            continue;
        };
        if strict {
            notes.push(RowNote::rejected(
                *line,
                format!(
                    "account_id {:?} names no account, and a strict import rejects such rows; import the account first, or import without strict (--strict, ?strict=true) to create it with only its id",
                    account.as_str()
                ),
            ));
            continue;
        }
        if told.insert(account.clone()) {
            notes.push(RowNote {
                line: *line,
                reason: format!(
                    "warning: account {:?} was not known, so it was created with only its id; import accounts to fill in its name, plan and owner (or import strictly, --strict or ?strict=true, to reject such rows)",
                    account.as_str()
                ),
                kept: true,
            });
        }
        kept.push(record);
    }
    (kept, told.into_iter().collect())
}

/// Checks that each event's customer exists and reads its time in the
/// customer's zone; rejects the rest.
async fn resolve_events(
    store: &(impl Customers + Accounts),
    batch: Vec<(usize, PendingEvent)>,
    notes: &mut Vec<RowNote>,
) -> Result<Vec<EventRecord>, store::Error> {
    let mut ids: Vec<_> = batch.iter().map(|(_, e)| e.customer_id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    let zones = store.customer_zones(&ids).await?;
    let mut records = Vec::with_capacity(batch.len());
    for (line, pending) in batch {
        let resolved = match zones.get(&pending.customer_id) {
            None => Err(format!(
                "no customer has id {:?}; import the customer before their events",
                pending.customer_id.as_str()
            )),
            Some(zone) => parse_instant(&pending.occurred_at, *zone)
                .map_err(|e| format!("occurred_at: {e}"))
                .map(|occurred_at| EventRecord {
                    id: pending.id,
                    customer_id: pending.customer_id,
                    name: pending.name,
                    occurred_at,
                    properties: pending.properties,
                }),
        };
        match resolved {
            Ok(record) => records.push(record),
            Err(reason) => notes.push(RowNote::rejected(line, reason)),
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people(rows: &[(&str, Option<&str>)]) -> Ready {
        let defaults = Defaults::from_settings(&Default::default()).unwrap();
        let records = rows
            .iter()
            .map(|(id, account)| {
                let mut row = serde_json::json!({"id": id, "email": format!("{id}@example.com")});
                if let Some(account) = account {
                    row["account_id"] = (*account).into();
                }
                record::customer(row.as_object().unwrap().clone(), &defaults).unwrap()
            })
            .collect();
        Ready::Customers(records)
    }

    #[test]
    fn batches_are_apart_only_without_shared_people_or_accounts() {
        let a = people(&[("a", None), ("b", None)]);
        assert!(a.apart(&people(&[("c", None), ("d", None)])));
        assert!(
            !a.apart(&people(&[("c", None), ("b", None)])),
            "b is in both: the later row must win"
        );
        assert!(
            !a.apart(&people(&[("c", Some("acme"))])),
            "an account named"
        );
        assert!(!people(&[("c", Some("acme"))]).apart(&people(&[("d", None)])));
        assert!(!a.apart(&Ready::Accounts(Vec::new())), "accounts");
        assert!(!a.apart(&Ready::Events(Vec::new())), "events");
    }
}
