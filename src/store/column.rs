//! A point in time as a store column holds it: Unix milliseconds in an
//! INTEGER on SQLite (what its indexes compare fastest, and what SQLite
//! has no type for), TIMESTAMPTZ on PostgreSQL. Bound and read the same way
//! on both, so a statement the two dialects share converts nothing by hand.
//! The other column types here do the same for JSON objects and integers.

use chrono::{DateTime, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef, Postgres};
use sqlx::sqlite::{Sqlite, SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
use sqlx::types::Json;
use sqlx::{Decode, Encode, Type};

/// An instant in a column. SQLite keeps milliseconds: finer parts are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct At(pub DateTime<Utc>);

impl Type<Sqlite> for At {
    fn type_info() -> SqliteTypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for At {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<'_, Sqlite>>::encode(self.0.timestamp_millis(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for At {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let ms = <i64 as Decode<'r, Sqlite>>::decode(value)?;
        DateTime::from_timestamp_millis(ms)
            .map(At)
            .ok_or_else(|| format!("{ms} ms since 1970 is not a time tend can hold").into())
    }
}

impl Type<Postgres> for At {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for At {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for At {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        <DateTime<Utc> as Decode<'r, Postgres>>::decode(value).map(At)
    }
}

/// A JSON object in a column (customer attributes, event properties):
/// text on SQLite, JSONB on PostgreSQL.
#[derive(Debug, Clone, PartialEq)]
pub struct Object<M = serde_json::Map<String, serde_json::Value>>(pub M);

impl<M> Type<Sqlite> for Object<M> {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<M: std::borrow::Borrow<serde_json::Map<String, serde_json::Value>>> Encode<'_, Sqlite>
    for Object<M>
{
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        let text = serde_json::to_string(self.0.borrow())?;
        <String as Encode<'_, Sqlite>>::encode(text, buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Object {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<'r, Sqlite>>::decode(value)?;
        match serde_json::from_str(text)? {
            serde_json::Value::Object(map) => Ok(Object(map)),
            other => Err(format!("{other} is not a JSON object").into()),
        }
    }
}

impl<M> Type<Postgres> for Object<M> {
    fn type_info() -> PgTypeInfo {
        <Json<serde_json::Value> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <Json<serde_json::Value> as Type<Postgres>>::compatible(ty)
    }
}

impl<M: std::borrow::Borrow<serde_json::Map<String, serde_json::Value>>> Encode<'_, Postgres>
    for Object<M>
{
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <Json<&serde_json::Map<String, serde_json::Value>> as Encode<'_, Postgres>>::encode(
            Json(self.0.borrow()),
            buf,
        )
    }
}

impl<'r> Decode<'r, Postgres> for Object {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        match <Json<serde_json::Value> as Decode<'r, Postgres>>::decode(value)?.0 {
            serde_json::Value::Object(map) => Ok(Object(map)),
            other => Err(format!("{other} is not a JSON object").into()),
        }
    }
}

/// A whole number in a column, read as `i64` whatever its width: SQLite
/// has one INTEGER, PostgreSQL's columns are SMALLINT (health), INTEGER
/// (attempts, SMTP codes) or BIGINT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int(pub i64);

impl Type<Sqlite> for Int {
    fn type_info() -> SqliteTypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Sqlite> for Int {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        <i64 as Decode<'r, Sqlite>>::decode(value).map(Int)
    }
}

impl Type<Postgres> for Int {
    fn type_info() -> PgTypeInfo {
        <i64 as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <i16 as Type<Postgres>>::compatible(ty)
            || <i32 as Type<Postgres>>::compatible(ty)
            || <i64 as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for Int {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        use sqlx::ValueRef;
        let ty = value.type_info().into_owned();
        if <i16 as Type<Postgres>>::compatible(&ty) {
            <i16 as Decode<'r, Postgres>>::decode(value).map(|n| Int(n.into()))
        } else if <i32 as Type<Postgres>>::compatible(&ty) {
            <i32 as Decode<'r, Postgres>>::decode(value).map(|n| Int(n.into()))
        } else {
            <i64 as Decode<'r, Postgres>>::decode(value).map(Int)
        }
    }
}
