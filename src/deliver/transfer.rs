//! A text part's content-transfer encoding: the same choice (7bit,
//! quoted-printable or base64) and the same bytes as lettre's `Body::new`,
//! made in one pass over the text. lettre turns the text's line endings
//! into CRLF by inserting one `\r` at a time, moving the rest of the text
//! for each line, and its quoted-printable encoder writes a character at a
//! time: for a 16 KB message with a survey, half of composing it. The
//! tests hold this module to lettre's output on generated texts.

use lettre::message::Body;
use lettre::message::header::ContentTransferEncoding;

/// The longest line, in bytes, before quoted-printable breaks it, and the
/// longest line a 7bit body may have (not counting its line break).
const LIMIT: usize = 76;

/// `text` as a part's body, encoded as `Body::new` would encode it.
pub fn body(text: &str) -> Body {
    match choose(text) {
        ContentTransferEncoding::QuotedPrintable => Body::dangerous_pre_encoded(
            quoted_printable(text.as_bytes()),
            ContentTransferEncoding::QuotedPrintable,
        ),
        ContentTransferEncoding::SevenBit => {
            Body::dangerous_pre_encoded(crlf(text).into_bytes(), ContentTransferEncoding::SevenBit)
        }
        // Mostly not ASCII (a text in Japanese, say): lettre's own base64.
        other => Body::new_with_encoding(crlf(text), other).expect("base64 encodes any text"),
    }
}

/// What `Body::new` chooses for a text (its line endings not yet CRLF):
/// 7bit when it is ASCII in lines of fewer than 76 bytes, else
/// quoted-printable when at most a third of its bytes need escaping,
/// else base64.
fn choose(text: &str) -> ContentTransferEncoding {
    if text.is_ascii() && !has_long_line(text) {
        return ContentTransferEncoding::SevenBit;
    }
    // Counted in runs of 255 bytes into a byte-wide sum, which the
    // compiler does sixteen or more bytes at a time.
    let escaped: usize = text
        .as_bytes()
        .chunks(255)
        .map(|run| {
            let in_run = run.iter().fold(0u8, |n, &b| {
                n.wrapping_add(u8::from(!matches!(b, b'\t' | b' '..=b'~')))
            });
            usize::from(in_run)
        })
        .sum();
    if escaped <= text.len() / 3 {
        ContentTransferEncoding::QuotedPrintable
    } else {
        ContentTransferEncoding::Base64
    }
}

/// Whether a line is too long for 7bit, as lettre measures it: from one
/// line feed to the next, counting one of them (none on the first line).
fn has_long_line(text: &str) -> bool {
    let mut last = 0;
    for (i, _) in text.match_indices('\n') {
        if i - last >= LIMIT {
            return true;
        }
        last = i;
    }
    text.len() - last >= LIMIT
}

/// `text` with a `\r` before every `\n` that has none.
fn crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    let mut rest = text;
    while let Some(at) = rest.find('\n') {
        out.push_str(&rest[..at]);
        // `rest` starts after a line feed (or at the start): a `\r` before
        // this one can only be in it.
        if !rest[..at].ends_with('\r') {
            out.push('\r');
        }
        out.push('\n');
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out
}

const fn needs_encoding(b: u8) -> bool {
    !matches!(b, b'\t' | b' '..=b'~') || b == b'='
}

/// [`needs_encoding`] of every byte, looked up.
static ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = needs_encoding(b as u8);
        b += 1;
    }
    table
};

/// Quoted-printable (RFC 2045, 6.7) of a text, byte for byte as the
/// `quoted_printable` crate writes it for lettre once the text's line
/// breaks are CRLF: a line feed, with or without a `\r` before it, is a
/// line break; lines of at most 76 bytes, soft breaks `=\r\n`, a space or
/// tab before a line break escaped, a lone `\r` escaped. Runs of bytes
/// that need no escaping are copied whole.
fn quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Line {
        bytes: Vec::with_capacity(input.len() + input.len() / 16),
        on_line: 0,
        backup: 0,
    };
    let mut was_cr = false;
    let mut i = 0;
    while i < input.len() {
        let byte = input[i];
        if byte == b'\n' {
            was_cr = false;
            out.escape_trailing_space();
            out.bytes.extend_from_slice(b"\r\n");
            out.on_line = 0;
            i += 1;
            continue;
        }
        if was_cr {
            was_cr = false;
            out.append(b"=0D");
        }
        if byte == b'\r' {
            was_cr = true;
            i += 1;
            continue;
        }
        if LIMIT - out.on_line >= 3 && !needs_encoding(byte) {
            let most = (LIMIT - out.on_line - 2).min(input.len() - i);
            let run = input[i..i + most]
                .iter()
                .position(|&b| ESCAPED[usize::from(b)])
                .unwrap_or(most);
            out.bytes.extend_from_slice(&input[i..i + run]);
            out.on_line += run;
            out.backup = out.bytes.len();
            i += run;
            continue;
        }
        match byte {
            b'=' => out.append(b"=3D"),
            b'\t' | b' '..=b'~' => out.append(&[byte]),
            _ => out.append(&hex(byte)),
        }
        i += 1;
    }
    if was_cr {
        out.append(b"=0D");
    } else {
        out.escape_trailing_space();
    }
    out.bytes
}

fn hex(byte: u8) -> [u8; 3] {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    [
        b'=',
        DIGITS[usize::from(byte >> 4)],
        DIGITS[usize::from(byte & 0xf)],
    ]
}

/// The encoded text and where its current line stands.
struct Line {
    bytes: Vec<u8>,
    /// Bytes on the current line.
    on_line: usize,
    /// Where the last thing appended starts: a soft break that no longer
    /// fits after it goes before it.
    backup: usize,
}

impl Line {
    fn append(&mut self, piece: &[u8]) {
        if self.on_line + piece.len() > LIMIT {
            if self.on_line == LIMIT {
                // What was appended last (at most three bytes) moves to
                // the next line.
                let mut last = [0u8; 3];
                let moved = self.bytes.len() - self.backup;
                last[..moved].copy_from_slice(&self.bytes[self.backup..]);
                self.bytes.truncate(self.backup);
                self.bytes.extend_from_slice(b"=\r\n");
                self.bytes.extend_from_slice(&last[..moved]);
                self.on_line = moved;
            } else {
                self.bytes.extend_from_slice(b"=\r\n");
                self.on_line = 0;
            }
        }
        self.bytes.extend_from_slice(piece);
        self.on_line += piece.len();
        self.backup = self.bytes.len() - piece.len();
    }

    /// A space or tab may not end an encoded line.
    fn escape_trailing_space(&mut self) {
        let escaped: &[u8] = match self.bytes.last() {
            Some(b' ') => b"=20",
            Some(b'\t') => b"=09",
            _ => return,
        };
        self.on_line -= 1;
        self.bytes.pop();
        self.append(escaped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lettre(text: &str) -> (ContentTransferEncoding, Vec<u8>) {
        let body = Body::new(text.to_owned());
        (body.encoding(), body.into_vec())
    }

    fn ours(text: &str) -> (ContentTransferEncoding, Vec<u8>) {
        let body = body(text);
        (body.encoding(), body.into_vec())
    }

    /// Pieces that meet every rule: line ends of each kind, spaces and
    /// tabs before them, `=`, bytes to escape, long runs that reach the
    /// line limit at every offset.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("\n".to_owned()),
            Just("\r\n".to_owned()),
            Just("\r".to_owned()),
            Just(" ".to_owned()),
            Just("\t".to_owned()),
            Just("=".to_owned()),
            Just("é".to_owned()),
            Just("日本".to_owned()),
            Just("\u{7f}".to_owned()),
            "[a-z<>\"/]{1,3}",
            (60usize..90).prop_map(|n| "x".repeat(n)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn the_same_encoding_and_bytes_as_lettre(pieces in proptest::collection::vec(piece(), 0..60)) {
            let text = pieces.concat();
            prop_assert_eq!(ours(&text), lettre(&text), "{:?}", text);
        }
    }

    #[test]
    fn each_encoding_is_chosen_as_lettre_chooses() {
        let cases = [
            "",
            "short\n",
            &"a".repeat(75),
            &"a".repeat(76),
            &format!("{}\n{}", "a".repeat(74), "b".repeat(75)),
            &format!("{}\n{}", "a".repeat(75), "b".repeat(3)),
            "caf\u{e9}\n",
            "日本語の文章です。日本語の文章です。\n",
            "\n\n\r\n\r\r",
            &format!("{} \n", "a".repeat(80)),
            &format!("{}=\n", "a".repeat(75)),
        ];
        for text in cases {
            assert_eq!(ours(text), lettre(text), "{text:?}");
        }
        assert_eq!(ours("short\n").0, ContentTransferEncoding::SevenBit);
        assert_eq!(
            ours(&"a".repeat(80)).0,
            ContentTransferEncoding::QuotedPrintable
        );
        assert_eq!(
            ours("日本語の文章です。\n").0,
            ContentTransferEncoding::Base64
        );
    }
}
