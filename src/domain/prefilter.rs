//! A condition's necessary part the store can check itself: drawn from a
//! CEL selector (say `customer.attributes.region == "eu" && customer.plan
//! != "free"`), it keeps the comparisons SQL can make with the same answer
//! (`region = 'eu'`) and drops the rest, so every customer the selector
//! matches passes it, and most who do not are never read. The selector
//! itself still judges every customer that passes.
//!
//! Pure data: the store turns it into SQL (`store::sql`).

/// A customer column a prefilter can compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Id,
    Email,
    Name,
    Timezone,
    Locale,
    Plan,
    Stage,
    Health,
}

impl Column {
    pub const ALL: [Self; 8] = [
        Self::Id,
        Self::Email,
        Self::Name,
        Self::Timezone,
        Self::Locale,
        Self::Plan,
        Self::Stage,
        Self::Health,
    ];

    fn of(field: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == field)
    }

    /// The field's name: `customer.NAME` in CEL, and the column of the
    /// `customers` table.
    pub fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Email => "email",
            Self::Name => "name",
            Self::Timezone => "timezone",
            Self::Locale => "locale",
            Self::Plan => "plan",
            Self::Stage => "stage",
            Self::Health => "health",
        }
    }

    fn is_number(self) -> bool {
        self == Self::Health
    }
}

/// A comparison SQL answers as CEL does. Strings are only compared for
/// equality: ordering them depends on PostgreSQL's collation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    /// The same comparison with its sides swapped (`7 < x` is `x > 7`).
    fn flipped(self) -> Self {
        match self {
            Self::Eq => Self::Eq,
            Self::Lt => Self::Gt,
            Self::Le => Self::Ge,
            Self::Gt => Self::Lt,
            Self::Ge => Self::Le,
        }
    }
}

/// A literal a prefilter compares with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    Text(String),
    Int(i64),
}

/// What the store checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prefilter {
    /// `column OP literal` (a NULL column never passes: in CEL a missing
    /// value compares false or fails, and a failure does not hold).
    Compare(Column, Op, Literal),
    /// `column IN (…)`.
    OneOf(Column, Vec<Literal>),
    /// The attribute `key` is the string `value`.
    AttributeIs(String, String),
    /// The attribute `key` is a list holding the string `value`, or an
    /// object with that key (CEL's `in` on a map tests its keys).
    AttributeHolds(String, String),
    /// Every one of these.
    All(Vec<Prefilter>),
    /// At least one of these.
    Any(Vec<Prefilter>),
}

/// The prefilter of a parsed selector, if any part of it can be checked in
/// SQL.
pub(super) fn of(expr: &cel::IdedExpr) -> Option<Prefilter> {
    use cel::common::ast::Expr;
    let Expr::Call(call) = &expr.expr else {
        return None;
    };
    let args = &call.args;
    match (call.func_name.as_str(), args.as_slice()) {
        ("_&&_", [a, b]) => {
            let parts: Vec<Prefilter> = [of(a), of(b)].into_iter().flatten().collect();
            match parts.len() {
                0 => None,
                1 => parts.into_iter().next(),
                _ => Some(Prefilter::All(parts)),
            }
        }
        ("_||_", [a, b]) => Some(Prefilter::Any(vec![of(a)?, of(b)?])),
        (op @ ("_==_" | "_<_" | "_<=_" | "_>_" | "_>=_"), [a, b]) => {
            let op = match op {
                "_==_" => Op::Eq,
                "_<_" => Op::Lt,
                "_<=_" => Op::Le,
                "_>_" => Op::Gt,
                _ => Op::Ge,
            };
            compare(a, op, b).or_else(|| compare(b, op.flipped(), a))
        }
        ("@in", [needle, haystack]) => {
            if let Some(column) = column(needle) {
                let cel::common::ast::Expr::List(list) = &haystack.expr else {
                    return None;
                };
                let values = list
                    .elements
                    .iter()
                    .map(|e| literal(e).filter(|l| fits(column, l)))
                    .collect::<Option<Vec<_>>>()?;
                return (!values.is_empty()).then_some(Prefilter::OneOf(column, values));
            }
            let (Some(Literal::Text(value)), Some(key)) = (literal(needle), attribute(haystack))
            else {
                return None;
            };
            Some(Prefilter::AttributeHolds(key, value))
        }
        _ => None,
    }
}

/// `left OP right` with a customer field on the left and a literal on the
/// right.
fn compare(left: &cel::IdedExpr, op: Op, right: &cel::IdedExpr) -> Option<Prefilter> {
    let value = literal(right)?;
    if let Some(column) = column(left) {
        let ordered = op != Op::Eq;
        if !fits(column, &value) || (ordered && !column.is_number()) {
            return None;
        }
        return Some(Prefilter::Compare(column, op, value));
    }
    match (attribute(left), value, op) {
        (Some(key), Literal::Text(text), Op::Eq) => Some(Prefilter::AttributeIs(key, text)),
        _ => None,
    }
}

/// Whether `literal` is of the column's type (CEL's `==` between a string
/// and a number is false, which SQL would not always say).
fn fits(column: Column, literal: &Literal) -> bool {
    matches!(
        (column.is_number(), literal),
        (true, Literal::Int(_)) | (false, Literal::Text(_))
    )
}

/// `customer.FIELD`, for a field with a column.
fn column(expr: &cel::IdedExpr) -> Option<Column> {
    use cel::common::ast::Expr;
    let Expr::Select(select) = &expr.expr else {
        return None;
    };
    if select.test {
        return None;
    }
    match &select.operand.expr {
        Expr::Ident(name) if name == "customer" => Column::of(&select.field),
        _ => None,
    }
}

/// `customer.attributes.KEY`, for a plain key.
fn attribute(expr: &cel::IdedExpr) -> Option<String> {
    use cel::common::ast::Expr;
    let Expr::Select(select) = &expr.expr else {
        return None;
    };
    let Expr::Select(parent) = &select.operand.expr else {
        return None;
    };
    let plain = !select.field.is_empty()
        && select
            .field
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match &parent.operand.expr {
        Expr::Ident(name)
            if name == "customer" && parent.field == "attributes" && !select.test && plain =>
        {
            Some(select.field.clone())
        }
        _ => None,
    }
}

fn literal(expr: &cel::IdedExpr) -> Option<Literal> {
    use cel::common::ast::{Expr, LiteralValue};
    match &expr.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(Literal::Text(s.inner().to_owned())),
        Expr::Literal(LiteralValue::Int(i)) => Some(Literal::Int(*i.inner())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::condition::Condition;

    fn prefilter(source: &str) -> Option<Prefilter> {
        Condition::compile(source).unwrap().prefilter()
    }

    fn text(s: &str) -> Literal {
        Literal::Text(s.into())
    }

    #[test]
    fn the_checkable_part_of_a_selector() {
        assert_eq!(
            prefilter("customer.health == 7"),
            Some(Prefilter::Compare(Column::Health, Op::Eq, Literal::Int(7)))
        );
        assert_eq!(
            prefilter("40 > customer.health"),
            Some(Prefilter::Compare(Column::Health, Op::Lt, Literal::Int(40)))
        );
        assert_eq!(
            prefilter(
                r#"customer.attributes.region == "eu" && "api" in customer.attributes.features"#
            ),
            Some(Prefilter::All(vec![
                Prefilter::AttributeIs("region".into(), "eu".into()),
                Prefilter::AttributeHolds("features".into(), "api".into()),
            ]))
        );
        assert_eq!(
            prefilter(r#"customer.plan in ["pro", "enterprise"]"#),
            Some(Prefilter::OneOf(
                Column::Plan,
                vec![text("pro"), text("enterprise")]
            ))
        );
        // What SQL cannot answer as CEL does is dropped from a conjunction…
        assert_eq!(
            prefilter(r#"customer.plan == "pro" && days_since(customer.signup_at) > 3"#),
            Some(Prefilter::Compare(Column::Plan, Op::Eq, text("pro")))
        );
        assert_eq!(
            prefilter(r#"customer.plan == "pro" || customer.stage == "at_risk""#),
            Some(Prefilter::Any(vec![
                Prefilter::Compare(Column::Plan, Op::Eq, text("pro")),
                Prefilter::Compare(Column::Stage, Op::Eq, text("at_risk")),
            ]))
        );
        // … and makes a disjunction, or the whole, uncheckable.
        for whole in [
            r#"customer.plan == "pro" || has(customer.attributes.x)"#,
            r#"customer.plan != "free""#,
            r#"!(customer.plan == "free")"#,
            r#"customer.plan < "m""#,
            r#"customer.health == "7""#,
            "customer.health == 7.0",
            r#"customer.attributes.address.city == "Lisbon""#,
            r#"customer.attributes.seats == 4"#,
            r#"customer.first_name == "Ana""#,
            "true",
        ] {
            assert_eq!(prefilter(whole), None, "{whole}");
        }
    }
}
