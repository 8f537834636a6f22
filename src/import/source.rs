//! Reads an import file as rows with their line numbers, streaming: memory
//! stays flat however large the file is. CSV rows come as header + fields,
//! JSONL rows as JSON objects.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde_json::{Map, Value};

/// A row larger than this is rejected rather than parsed: no customer or
/// event record needs more, and it bounds memory on a malformed file.
pub const MAX_ROW_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    pub fn of(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "jsonl" | "ndjson" => Some(Self::Jsonl),
            _ => None,
        }
    }
}

/// One row's content.
pub enum Fields {
    /// Values in header order.
    Csv(Vec<String>),
    Json(Map<String, Value>),
}

/// A row, or the reason it cannot be read at all.
pub struct Row {
    pub line: usize,
    pub fields: Result<Fields, String>,
}

/// Rows of one file.
pub enum Rows<R: Read> {
    Csv {
        reader: csv::Reader<LineTracker<R>>,
        header: Vec<String>,
        record: csv::ByteRecord,
    },
    Jsonl {
        reader: BufReader<R>,
        line: usize,
        buf: Vec<u8>,
        consumed: u64,
    },
}

/// Why a whole file cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{line}: {message}")]
    Header { line: usize, message: String },
    #[error("{0}")]
    Read(String),
}

impl<R: Read> Rows<R> {
    pub fn open(input: R, format: Format) -> Result<Self, SourceError> {
        match format {
            Format::Jsonl => Ok(Self::Jsonl {
                reader: BufReader::with_capacity(1 << 16, input),
                line: 0,
                buf: Vec::new(),
                consumed: 0,
            }),
            Format::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .flexible(true)
                    .has_headers(true)
                    .from_reader(LineTracker::new(input));
                let header = reader.byte_headers().map_err(|e| SourceError::Header {
                    line: 1,
                    message: format!("cannot read the header row: {e}"),
                })?;
                if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
                    return Err(SourceError::Header {
                        line: 1,
                        message:
                            "the file is empty; a CSV import needs a header row naming its columns"
                                .into(),
                    });
                }
                let header = header
                    .iter()
                    .map(|h| {
                        std::str::from_utf8(h)
                            .map(|s| s.trim().trim_start_matches('\u{feff}').to_owned())
                            .map_err(|_| SourceError::Header {
                                line: 1,
                                message: "the header row is not UTF-8; save the file as UTF-8"
                                    .into(),
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Self::Csv {
                    reader,
                    header,
                    record: csv::ByteRecord::new(),
                })
            }
        }
    }

    /// The CSV header; empty for JSONL.
    pub fn header(&self) -> &[String] {
        match self {
            Self::Csv { header, .. } => header,
            Self::Jsonl { .. } => &[],
        }
    }

    /// Bytes read so far, for progress.
    pub fn position(&self) -> u64 {
        match self {
            Self::Csv { reader, .. } => reader.position().byte(),
            Self::Jsonl { consumed, .. } => *consumed,
        }
    }

    /// The next row, `Ok(None)` at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<Row>, SourceError> {
        match self {
            Self::Csv {
                reader,
                header,
                record,
            } => loop {
                let before = reader.position().byte();
                let read = reader.read_byte_record(record);
                // The record's last line, less the line breaks inside its
                // quoted fields, is its first line. (The record's own start
                // offset would count the blank lines before it.)
                let end = reader.position().byte().max(before + 1);
                let last_line = reader.get_mut().line_at(end - 1);
                match read {
                    Ok(false) => return Ok(None),
                    Ok(true) => {}
                    Err(e) => return Err(SourceError::Read(format!("line {last_line}: {e}"))),
                }
                let inner_breaks = record.as_slice().iter().filter(|&&b| b == b'\n').count();
                let line = last_line - inner_breaks;
                if record.len() == 1 && record[0].is_empty() {
                    continue; // a blank line
                }
                return Ok(Some(Row {
                    line,
                    fields: csv_fields(record, header.len()),
                }));
            },
            Self::Jsonl {
                reader,
                line,
                buf,
                consumed,
            } => loop {
                *line += 1;
                let Some(length) = read_bounded_line(reader, buf, MAX_ROW_BYTES)
                    .map_err(|e| SourceError::Read(e.to_string()))?
                else {
                    return Ok(None);
                };
                *consumed += length as u64;
                if length > MAX_ROW_BYTES {
                    return Ok(Some(Row {
                        line: *line,
                        fields: Err(too_long(length)),
                    }));
                }
                let text = buf.trim_ascii();
                if text.is_empty() {
                    continue;
                }
                let fields = match serde_json::from_slice::<Value>(text) {
                    Ok(Value::Object(map)) => Ok(Fields::Json(map)),
                    Ok(other) => Err(format!(
                        "the line is a JSON {}, not an object; write one {{\"id\": …}} object a line",
                        kind(&other)
                    )),
                    Err(e) => Err(format!(
                        "the line is not JSON ({e}); write one JSON object a line"
                    )),
                };
                return Ok(Some(Row {
                    line: *line,
                    fields,
                }));
            },
        }
    }
}

/// Counts lines under the CSV reader, which miscounts them after blank lines
/// and CRLF endings: remembers where each newline is until the reader has
/// passed it, so memory stays bounded by the reader's buffer.
pub struct LineTracker<R> {
    inner: R,
    read: u64,
    newlines: std::collections::VecDeque<u64>,
    lines_before: usize,
}

impl<R> LineTracker<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            read: 0,
            newlines: Default::default(),
            lines_before: 0,
        }
    }

    /// The 1-based line on which byte `offset` stands; offsets must not
    /// decrease between calls.
    fn line_at(&mut self, offset: u64) -> usize {
        while self.newlines.front().is_some_and(|&nl| nl < offset) {
            self.newlines.pop_front();
            self.lines_before += 1;
        }
        self.lines_before + 1
    }
}

impl<R: Read> Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let base = self.read;
        self.newlines.extend(
            buf[..n]
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| base + i as u64),
        );
        self.read += n as u64;
        Ok(n)
    }
}

fn csv_fields(record: &csv::ByteRecord, columns: usize) -> Result<Fields, String> {
    if record.as_slice().len() > MAX_ROW_BYTES {
        return Err(too_long(record.as_slice().len()));
    }
    if record.len() != columns {
        return Err(format!(
            "the row has {} fields but the header names {columns} columns; check for a missing or extra comma, or quote values that contain one",
            record.len()
        ));
    }
    record
        .iter()
        .map(|f| {
            std::str::from_utf8(f)
                .map(str::to_owned)
                .map_err(|_| "the row is not valid UTF-8; save the file as UTF-8".to_owned())
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Fields::Csv)
}

fn too_long(length: usize) -> String {
    format!("the row is {length} bytes long; a row may be at most {MAX_ROW_BYTES} bytes")
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Reads one line into `buf` (without the newline), keeping at most `max`
/// bytes of it; returns the line's full length, or `None` at the end.
fn read_bounded_line<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<usize>> {
    buf.clear();
    let mut length = 0;
    let mut any = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(any.then_some(length));
        }
        any = true;
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if buf.len() < max {
            let room = max + 1 - buf.len();
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        length += chunk.len();
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(Some(length + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str, format: Format) -> Vec<(usize, Result<String, String>)> {
        let mut rows = Rows::open(text.as_bytes(), format).unwrap();
        let mut out = Vec::new();
        while let Some(row) = rows.next_row().unwrap() {
            out.push((
                row.line,
                row.fields.map(|f| match f {
                    Fields::Csv(v) => v.join("|"),
                    Fields::Json(m) => serde_json::to_string(&m).unwrap(),
                }),
            ));
        }
        out
    }

    #[test]
    fn csv_rows_keep_their_lines() {
        let got = rows("id,email\na,a@x.io\n\n\"b\nc\",b@x.io\nd\n", Format::Csv);
        assert_eq!(got[0], (2, Ok("a|a@x.io".into())));
        assert_eq!(got[1], (4, Ok("b\nc|b@x.io".into())));
        assert_eq!(got[2].0, 6);
        assert!(got[2].1.as_ref().unwrap_err().contains("1 fields"));
        let crlf = rows("id,email\r\na,1\r\n\r\nb,2\r\n", Format::Csv);
        assert_eq!((crlf[0].0, crlf[1].0), (2, 4));
    }

    #[test]
    fn jsonl_rows_and_bad_lines() {
        let got = rows("{\"id\":\"a\"}\n\nnot json\n[1]\n", Format::Jsonl);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, 1);
        assert!(got[1].1.as_ref().unwrap_err().contains("not JSON"));
        assert_eq!(got[1].0, 3);
        assert!(got[2].1.as_ref().unwrap_err().contains("array"));
    }

    #[test]
    fn long_lines_are_bounded() {
        let long = format!(
            "{{\"id\":\"{}\"}}\n{{\"id\":\"b\"}}",
            "x".repeat(MAX_ROW_BYTES)
        );
        let got = rows(&long, Format::Jsonl);
        assert!(got[0].1.as_ref().unwrap_err().contains("at most"));
        assert_eq!(got[1], (2, Ok("{\"id\":\"b\"}".into())));
    }

    #[test]
    fn empty_csv_is_a_header_problem() {
        assert!(matches!(
            Rows::open(&b""[..], Format::Csv),
            Err(SourceError::Header { line: 1, .. })
        ));
    }
}
