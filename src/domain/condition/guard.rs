//! The limits that keep one condition from taking the process down: its
//! size and nesting, read from the text before the parser sees it; its
//! depth and worst-case cost, read from the parsed expression; and the
//! size of the customer data a condition may go through at run time.

use cel::common::ast::{EntryExpr, Expr};
use cel::parser::Expression;

/// Longest condition, in bytes. The longest shipped or documented condition
/// is under 200 bytes; 4 KiB leaves twenty times that, and keeps every
/// bound below (list literals, nesting, cost) small enough to compute.
pub const MAX_LENGTH: usize = 4096;

/// Deepest nesting of `(`, `[` and `{` outside string literals. Shipped
/// conditions nest 3 deep; the parser recurses once or more for every level
/// and panicked formatting its error for 100,000 of them.
pub const MAX_BRACKETS: usize = 32;

/// Most list macros (`all`, `exists`, `exists_one`, `map`, `filter`) nested
/// inside one another. Each level multiplies the work by the length of its
/// list: two levels over lists of 1,000 are a million steps already.
pub const MAX_MACROS: usize = 2;

/// Deepest parsed expression: operators chained without brackets
/// (`a + b + c …`, `!!!…`, `a.b.c…`) nest too, and evaluating recurses once
/// for each level on the caller's stack. `&&` and `||` chains are balanced
/// by the parser, so a hundred alternatives nest seven deep.
pub const MAX_DEPTH: usize = 100;

/// Most elements of one list or map of customer data (an attribute, or the
/// attributes themselves) a condition that goes through lists may see: the
/// cost below counts every such list at this length.
pub const MAX_ITERATED: usize = 1000;

/// Most evaluation steps (expression nodes visited) one condition may take
/// for one customer, counting lists at their largest. One step costs about
/// 0.1 µs in a release build, so the worst evaluation stays around 10 ms;
/// a macro over an attribute list with a short body takes about 5,000.
pub const BUDGET: u64 = 100_000;

/// Why a condition is refused before it is kept, or not evaluated for one
/// customer. Each message says which limit, what was found, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error(
        "the condition is {0} bytes long, over the limit of {MAX_LENGTH}; shorten it (a lifecycle stage can name a part that several conditions share, which they test as customer.stage)"
    )]
    Length(usize),
    #[error(
        "the condition nests brackets {depth} deep (line {line}, column {column}), over the limit of {MAX_BRACKETS}; remove brackets that are not needed (&& and || need none)"
    )]
    Brackets {
        depth: usize,
        line: usize,
        column: usize,
    },
    #[error(
        "the condition nests {depth} list macros (all, exists, exists_one, map, filter) inside one another (line {line}, column {column}), over the limit of {MAX_MACROS}: each level multiplies the work by its list's length and the evaluation would exceed its budget; test the lists one after the other, joined with && or ||"
    )]
    Macros {
        depth: usize,
        line: usize,
        column: usize,
    },
    #[error(
        "the condition nests operators {0} deep, over the limit of {MAX_DEPTH}; write long sums or chains of ! and . with fewer terms"
    )]
    Depth(usize),
    #[error(
        "the condition may take up to {0} evaluation steps for one customer, over the budget of {BUDGET} (lists of customer data count at up to {MAX_ITERATED} elements, and every list macro repeats its body for each element); go through fewer or shorter lists, or nest fewer list macros"
    )]
    Cost(u64),
    #[error(
        "{what} holds {size} elements, more than the {MAX_ITERATED} a condition that goes through lists may see; the condition does not hold for this customer (trim the attribute, or test it without all, exists, exists_one, map or filter)"
    )]
    Data { what: String, size: usize },
}

/// Checks the text of a condition before it is parsed: its length, the
/// nesting of its brackets and of its list macros. Cheap: one pass over at
/// most `MAX_LENGTH` bytes.
pub fn scan(source: &str) -> Result<(), LimitError> {
    if source.len() > MAX_LENGTH {
        return Err(LimitError::Length(source.len()));
    }
    let bytes = source.as_bytes();
    // Open brackets, each with whether it opens a list macro's arguments.
    let mut open: Vec<bool> = Vec::new();
    let mut macros = 0;
    let mut brackets_over: Option<(usize, usize)> = None;
    let mut macros_over: Option<(usize, usize)> = None;
    let (mut deepest, mut most_macros) = (0, 0);
    // The last identifier, whether a `.` came before it, and whether it
    // ended at the byte before this one (a string prefix such as r"…").
    let mut last: Option<(&[u8], bool, usize)> = None;
    let mut dot = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' => {
                let prefix = last
                    .filter(|(_, _, end)| *end == i)
                    .map(|(name, _, _)| name)
                    .filter(|name| name.iter().all(|c| b"rRbB".contains(c)));
                let raw = prefix.is_some_and(|name| name.iter().any(|c| b"rR".contains(c)));
                i = past_string(bytes, i, raw);
                last = None;
                dot = false;
                continue;
            }
            b'(' | b'[' | b'{' => {
                let is_macro = b == b'('
                    && last.is_some_and(|(name, after_dot, _)| {
                        after_dot
                            && matches!(
                                name,
                                b"all" | b"exists" | b"exists_one" | b"map" | b"filter"
                            )
                    });
                open.push(is_macro);
                if is_macro {
                    macros += 1;
                }
                if open.len() > MAX_BRACKETS && brackets_over.is_none() {
                    brackets_over = Some(position(source, i));
                }
                if macros > MAX_MACROS && macros_over.is_none() {
                    macros_over = Some(position(source, i));
                }
                deepest = deepest.max(open.len());
                most_macros = most_macros.max(macros);
                last = None;
                dot = false;
            }
            b')' | b']' | b'}' => {
                if open.pop() == Some(true) {
                    macros -= 1;
                }
                last = None;
                dot = false;
            }
            b'.' => {
                dot = true;
                last = None;
            }
            b if b.is_ascii_whitespace() => {}
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                last = Some((&bytes[start..i], dot, i));
                dot = false;
                continue;
            }
            b if b.is_ascii_digit() => {
                // A number, `1.5e3` included: its `.` is not a member access.
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                    i += 1;
                }
                last = None;
                dot = false;
                continue;
            }
            _ => {
                last = None;
                dot = false;
            }
        }
        i += 1;
    }
    if let Some((line, column)) = brackets_over {
        return Err(LimitError::Brackets {
            depth: deepest,
            line,
            column,
        });
    }
    if let Some((line, column)) = macros_over {
        return Err(LimitError::Macros {
            depth: most_macros,
            line,
            column,
        });
    }
    Ok(())
}

/// The index just past the string literal opening at `start`; the end of
/// the text when it is not closed (the parser then says so).
fn past_string(bytes: &[u8], start: usize, raw: bool) -> usize {
    let quote = bytes[start];
    let triple = bytes.get(start..start + 3) == Some(&[quote, quote, quote][..]);
    let mut i = start + if triple { 3 } else { 1 };
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if !raw => i += 2,
            b if b == quote && !triple => return i + 1,
            b if b == quote && bytes.get(i..i + 3) == Some(&[quote, quote, quote][..]) => {
                return i + 3;
            }
            b'\n' if !triple => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Line and column (from 1, in characters) of byte `at`.
fn position(source: &str, at: usize) -> (usize, usize) {
    let before = &source[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Checks a parsed condition: how deep it nests, and what it may cost for
/// one customer at worst. Recurses once per level: run it where the parser
/// runs, on a thread with a large stack.
pub fn check(expression: &Expression) -> Result<(), LimitError> {
    let depth = depth(&expression.expr);
    if depth > MAX_DEPTH {
        return Err(LimitError::Depth(depth));
    }
    let cost = Cost::default().of(&expression.expr);
    if cost > BUDGET {
        return Err(LimitError::Cost(cost));
    }
    Ok(())
}

/// Whether the expression contains a list macro, so that the customer data
/// it reads must be checked against `MAX_ITERATED` before evaluating.
pub fn iterates(expression: &Expression) -> bool {
    fn any(e: &Expr) -> bool {
        match e {
            Expr::Comprehension(_) => true,
            _ => children(e).iter().any(|c| any(c)),
        }
    }
    any(&expression.expr)
}

fn depth(e: &Expr) -> usize {
    1 + children(e).iter().map(|c| depth(c)).max().unwrap_or(0)
}

/// The direct subexpressions of `e`.
fn children(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Call(call) => call
            .target
            .iter()
            .map(|t| &t.expr)
            .chain(call.args.iter().map(|a| &a.expr))
            .collect(),
        Expr::Comprehension(c) => [
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ]
        .into_iter()
        .map(|x| &x.expr)
        .collect(),
        Expr::List(list) => list.elements.iter().map(|x| &x.expr).collect(),
        Expr::Map(map) => entries(&map.entries),
        Expr::Struct(s) => entries(&s.entries),
        Expr::Select(select) => vec![&select.operand.expr],
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    }
}

fn entries(entries: &[cel::common::ast::IdedEntryExpr]) -> Vec<&Expr> {
    entries
        .iter()
        .flat_map(|entry| match &entry.expr {
            EntryExpr::MapEntry(m) => vec![&m.key.expr, &m.value.expr],
            EntryExpr::StructField(f) => vec![&f.value.expr],
        })
        .collect()
}

/// The worst-case cost of an expression: the nodes evaluation visits, a
/// macro's body counted once for each element its list may hold.
#[derive(Default)]
struct Cost<'a> {
    /// The bound on the lists and maps each macro variable in scope holds.
    bound: Vec<(&'a str, u64)>,
}

impl<'a> Cost<'a> {
    fn of(&mut self, e: &'a Expr) -> u64 {
        match e {
            Expr::Comprehension(c) => {
                let range = self.bound_of(&c.iter_range.expr);
                let before = self.of(&c.iter_range.expr) + self.of(&c.accu_init.expr);
                // Within the loop, the element and the accumulator (a list
                // `map` and `filter` build, no longer than the range) are
                // bounded by the range.
                self.bound.push((c.iter_var.as_str(), range));
                if let Some(second) = &c.iter_var2 {
                    self.bound.push((second.as_str(), range));
                }
                self.bound.push((c.accu_var.as_str(), range));
                let body = self.of(&c.loop_cond.expr) + self.of(&c.loop_step.expr);
                let result = self.of(&c.result.expr);
                self.bound
                    .truncate(self.bound.len() - 2 - usize::from(c.iter_var2.is_some()));
                before
                    .saturating_add(range.saturating_mul(body))
                    .saturating_add(result)
            }
            // `x in list` goes through the list.
            Expr::Call(call) if call.func_name == "@in" => {
                let scan = call.args.get(1).map_or(0, |l| self.bound_of(&l.expr));
                self.sum(e).saturating_add(scan)
            }
            _ => self.sum(e),
        }
    }

    /// One for `e` itself, plus the cost of its subexpressions.
    fn sum(&mut self, e: &'a Expr) -> u64 {
        children(e)
            .into_iter()
            .fold(1u64, |total, c| total.saturating_add(self.of(c)))
    }

    /// A bound on the length of any list or map `e` may evaluate to, or
    /// hold at any depth.
    fn bound_of(&self, e: &'a Expr) -> u64 {
        match e {
            Expr::Literal(_) => 0,
            Expr::List(list) => list
                .elements
                .iter()
                .map(|x| self.bound_of(&x.expr))
                .fold(list.elements.len() as u64, u64::max),
            Expr::Map(map) => entries(&map.entries)
                .into_iter()
                .map(|x| self.bound_of(x))
                .fold(map.entries.len() as u64, u64::max),
            Expr::Ident(name) => self
                .bound
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map_or(MAX_ITERATED as u64, |(_, b)| *b),
            // Concatenation is the only way to build a longer list.
            Expr::Call(call) if call.func_name == "_+_" => call
                .args
                .iter()
                .fold(0u64, |sum, a| sum.saturating_add(self.bound_of(&a.expr))),
            // What a loop builds (`map` of a list of lists, say) may hold
            // longer lists than the one it goes through.
            Expr::Comprehension(c) => {
                let range = self.bound_of(&c.iter_range.expr);
                let mut inner = Cost {
                    bound: self.bound.clone(),
                };
                inner.bound.push((c.iter_var.as_str(), range));
                if let Some(second) = &c.iter_var2 {
                    inner.bound.push((second.as_str(), range));
                }
                inner.bound.push((c.accu_var.as_str(), range));
                range
                    .max(inner.bound_of(&c.loop_step.expr))
                    .max(inner.bound_of(&c.result.expr))
            }
            // Anything else draws from its parts or from customer data,
            // which holds no more than `MAX_ITERATED` at run time.
            _ => children(e)
                .into_iter()
                .map(|x| self.bound_of(x))
                .fold(MAX_ITERATED as u64, u64::max),
        }
    }
}

/// Checks the customer data a condition that goes through lists may see:
/// the attributes, and every list and object inside them.
pub fn check_data(
    attributes: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), LimitError> {
    if attributes.len() > MAX_ITERATED {
        return Err(LimitError::Data {
            what: "customer.attributes".into(),
            size: attributes.len(),
        });
    }
    for (name, value) in attributes {
        check_value(value, &format!("customer.attributes.{name}"))?;
    }
    Ok(())
}

fn check_value(value: &serde_json::Value, what: &str) -> Result<(), LimitError> {
    let size = match value {
        serde_json::Value::Array(items) => {
            for item in items {
                check_value(item, what)?;
            }
            items.len()
        }
        serde_json::Value::Object(map) => {
            for item in map.values() {
                check_value(item, what)?;
            }
            map.len()
        }
        _ => 0,
    };
    if size > MAX_ITERATED {
        return Err(LimitError::Data {
            what: what.to_owned(),
            size,
        });
    }
    Ok(())
}
