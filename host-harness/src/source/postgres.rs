//! PostgreSQL: one query in a read-only transaction, fetched through a portal (a server-side
//! cursor) `batch_size` rows at a time on a worker thread.
//!
//! Type mapping (values are decoded from the binary protocol):
//! | PostgreSQL | cell |
//! |---|---|
//! | `bool` | boolean |
//! | `int2`, `int4`, `int8` | integer |
//! | `float4`, `float8` | float (`NaN`/`±Infinity` → invalid row) |
//! | `numeric` | **text**, the exact decimal (`1234.50`); cast to `float8` in the query for a float |
//! | `text`, `varchar`, `char(n)`, `name`, `citext`, enums | text |
//! | `date` | text `YYYY-MM-DD` |
//! | `timestamp` | timestamp, RFC 3339, read as UTC (`…Z`) |
//! | `timestamptz` | timestamp, RFC 3339 in UTC (`…Z`) |
//! | `json`, `jsonb` | JSON (compact, keys sorted) |
//! | `uuid` | text, lowercase hyphenated |
//!
//! Domains map as their base type. Any other type fails `open` with an error naming the column
//! and the type, and the fix: cast it in the query. TLS is not used (`NoTls`): the warehouse is
//! expected on loopback or a private network.
//!
//! Size caps: a value's size is its wire size, checked before it is decoded or copied; a cell
//! over `max_cell_bytes` or a row (the sum of its values) over `max_row_bytes` makes the row
//! invalid. The driver has already received the row by then (the protocol sends whole rows), so
//! the cap bounds what the host keeps and hands on, not what one fetch of `batch_size` rows
//! holds; `left(col, n)` in the query bounds that.

use std::str::FromStr;

use ::postgres::types::{FromSql, Kind, Type};
use ::postgres::{Client, Config, NoTls};

use super::convert::{canonical_json, format_date, unix_micros_to_rfc3339, PG_EPOCH_UNIX_MICROS};
use super::budget::Origin;
use super::{cell_error, ChannelReader, PostgresConfig, RawRecord, SourceError, DEFAULT_BATCH_SIZE};
use crate::contract::model::{Cell, Column, ErrorCode};

/// A connection string with its password replaced by `***`, for logs and messages.
///
/// Handles URLs (`postgresql://user:secret@host/db?password=…`) and key/value strings
/// (`host=… password=secret`, quoted values too).
pub fn redact_connection_string(s: &str) -> String {
    let t = s.trim();
    if t.starts_with("postgres://") || t.starts_with("postgresql://") {
        let scheme_end = t.find("://").map_or(0, |i| i + 3);
        let rest = &t[scheme_end..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let authority = match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                let user = userinfo.split(':').next().unwrap_or("");
                if userinfo.contains(':') {
                    format!("{user}:***{}", &authority[at..])
                } else {
                    authority.to_string()
                }
            }
            None => authority.to_string(),
        };
        let tail = match tail.find('?') {
            Some(q) => {
                let (path, query) = tail.split_at(q + 1);
                let params: Vec<String> = query
                    .split('&')
                    .map(|p| if p.to_ascii_lowercase().starts_with("password=") { "password=***".to_string() } else { p.to_string() })
                    .collect();
                format!("{path}{}", params.join("&"))
            }
            None => tail.to_string(),
        };
        format!("{}{authority}{tail}", &t[..scheme_end])
    } else {
        // key = value pairs; values may be single-quoted with backslash escapes.
        let mut out = String::with_capacity(t.len());
        let b = t.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let key_start = i;
            while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            let key = &t[key_start..i];
            let mut j = i;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < b.len() && b[j] == b'=' {
                j += 1;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                let v_start = j;
                if j < b.len() && b[j] == b'\'' {
                    j += 1;
                    while j < b.len() && b[j] != b'\'' {
                        if b[j] == b'\\' {
                            j += 1;
                        }
                        j += 1;
                    }
                    j = (j + 1).min(b.len());
                } else {
                    while j < b.len() && !b[j].is_ascii_whitespace() {
                        j += 1;
                    }
                }
                if key.eq_ignore_ascii_case("password") {
                    out.push_str(key);
                    out.push_str("=***");
                } else {
                    out.push_str(&t[key_start..j]);
                }
                let _ = v_start;
                i = j;
            } else {
                out.push_str(&t[key_start..j]);
                i = j;
            }
            while i < b.len() && b[i].is_ascii_whitespace() {
                out.push(b[i] as char);
                i += 1;
            }
        }
        out
    }
}

/// `postgresql://user@host:port/db`, built from the parsed config: never a password.
fn target_of(cfg: &Config) -> String {
    let user = cfg.get_user().unwrap_or("");
    let host = cfg
        .get_hosts()
        .first()
        .map(|h| match h {
            ::postgres::config::Host::Tcp(s) => s.clone(),
            #[allow(unreachable_patterns)]
            ::postgres::config::Host::Unix(p) => p.display().to_string(),
            #[allow(unreachable_patterns)]
            _ => "?".to_string(),
        })
        .unwrap_or_else(|| "localhost".to_string());
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let db = cfg.get_dbname().unwrap_or(user);
    let at = if user.is_empty() { String::new() } else { format!("{user}@") };
    format!("postgresql://{at}{host}:{port}/{db}")
}

/// How a column is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decode {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Date,
    Timestamp,
    Json,
    Jsonb,
    Uuid,
}

fn decode_of(ty: &Type) -> Option<Decode> {
    Some(match *ty {
        Type::BOOL => Decode::Bool,
        Type::INT2 => Decode::Int2,
        Type::INT4 => Decode::Int4,
        Type::INT8 => Decode::Int8,
        Type::FLOAT4 => Decode::Float4,
        Type::FLOAT8 => Decode::Float8,
        Type::NUMERIC => Decode::Numeric,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => Decode::Text,
        Type::DATE => Decode::Date,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => Decode::Timestamp,
        Type::JSON => Decode::Json,
        Type::JSONB => Decode::Jsonb,
        Type::UUID => Decode::Uuid,
        _ => match ty.kind() {
            Kind::Enum(_) => Decode::Text,
            Kind::Domain(inner) => return decode_of(inner),
            _ if ty.name() == "citext" => Decode::Text,
            _ => return None,
        },
    })
}

/// Any value as its raw binary bytes (`None` for NULL).
struct Raw<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw)))
    }
    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

fn be<const N: usize>(raw: &[u8]) -> Result<[u8; N], String> {
    raw.try_into().map_err(|_| format!("unexpected {}-byte value (expected {N})", raw.len()))
}

fn numeric_text(raw: &[u8]) -> Result<String, String> {
    let bad = || "malformed numeric value".to_string();
    if raw.len() < 8 {
        return Err(bad());
    }
    let word = |i: usize| i16::from_be_bytes([raw[i], raw[i + 1]]);
    let ndigits = usize::try_from(word(0)).map_err(|_| bad())?;
    let weight = i64::from(word(2));
    let sign = u16::from_be_bytes([raw[4], raw[5]]);
    let dscale = usize::from(u16::from_be_bytes([raw[6], raw[7]]));
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        0x0000 | 0x4000 => {}
        _ => return Err(bad()),
    }
    if raw.len() != 8 + 2 * ndigits {
        return Err(bad());
    }
    let digit = |k: i64| -> i16 {
        if k < 0 || k as usize >= ndigits {
            0
        } else {
            word(8 + 2 * k as usize)
        }
    };
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        for k in 0..=weight {
            if k == 0 {
                s.push_str(&digit(k).to_string());
            } else {
                s.push_str(&format!("{:04}", digit(k)));
            }
        }
    }
    if dscale > 0 {
        s.push('.');
        let mut frac = String::with_capacity(dscale + 4);
        let mut k = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(k)));
            k += 1;
        }
        frac.truncate(dscale);
        s.push_str(&frac);
    }
    Ok(s)
}

fn decode(d: Decode, raw: &[u8]) -> Result<Cell, String> {
    Ok(match d {
        Decode::Bool => Cell::Boolean(be::<1>(raw)?[0] != 0),
        Decode::Int2 => Cell::Integer(i64::from(i16::from_be_bytes(be(raw)?))),
        Decode::Int4 => Cell::Integer(i64::from(i32::from_be_bytes(be(raw)?))),
        Decode::Int8 => Cell::Integer(i64::from_be_bytes(be(raw)?)),
        Decode::Float4 => {
            let f = f32::from_be_bytes(be(raw)?);
            if !f.is_finite() {
                return Err(format!("{f} is not a finite number; filter it out or cast it in the query"));
            }
            // Through its shortest text so 0.1::float4 reads 0.1, not 0.10000000149011612.
            Cell::Float(f.to_string().parse::<f64>().unwrap_or(f64::from(f)))
        }
        Decode::Float8 => {
            let f = f64::from_be_bytes(be(raw)?);
            if !f.is_finite() {
                return Err(format!("{f} is not a finite number; filter it out or cast it in the query"));
            }
            Cell::Float(f)
        }
        Decode::Numeric => Cell::Text(numeric_text(raw)?),
        Decode::Text => Cell::Text(std::str::from_utf8(raw).map_err(|_| "text is not UTF-8".to_string())?.to_string()),
        Decode::Date => {
            let days = i32::from_be_bytes(be(raw)?);
            if days == i32::MAX || days == i32::MIN {
                return Err("the date is ±infinity; filter it out or cast it in the query".into());
            }
            Cell::Text(format_date(i64::from(days) + 10_957)?)
        }
        Decode::Timestamp => {
            let micros = i64::from_be_bytes(be(raw)?);
            if micros == i64::MAX || micros == i64::MIN {
                return Err("the timestamp is ±infinity; filter it out or cast it in the query".into());
            }
            let unix = micros.checked_add(PG_EPOCH_UNIX_MICROS).ok_or("timestamp out of range")?;
            Cell::Timestamp(unix_micros_to_rfc3339(unix)?)
        }
        Decode::Json => Cell::Json(canonical_json(std::str::from_utf8(raw).map_err(|_| "JSON is not UTF-8".to_string())?)?),
        Decode::Jsonb => {
            let body = match raw.split_first() {
                Some((1, body)) => body,
                _ => return Err("unknown jsonb format version".into()),
            };
            Cell::Json(canonical_json(std::str::from_utf8(body).map_err(|_| "JSON is not UTF-8".to_string())?)?)
        }
        Decode::Uuid => {
            let b: [u8; 16] = be(raw)?;
            let h = hex::encode(b);
            Cell::Text(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
        }
    })
}

/// A value decoded, or NULL with the row's first error set to why it does not decode.
fn decode_cell(d: Decode, raw: &[u8], name: &str, at: &str, error: &mut Option<crate::contract::model::RecordError>) -> Cell {
    match decode(d, raw) {
        Ok(c) => c,
        Err(reason) => {
            if error.is_none() {
                *error = Some(cell_error(ErrorCode::InvalidValue, name, format!("{at}, column `{name}`: {reason}")));
            }
            Cell::Null
        }
    }
}

/// The source's connection settings from `url` or `url_env`, and the `host:port/db` they name
/// (for messages: never the password).
pub(crate) fn connection(cfg: &PostgresConfig) -> Result<(Config, String), SourceError> {
    let url = match (&cfg.url, &cfg.url_env) {
        (Some(u), None) => u.clone(),
        (None, Some(var)) => std::env::var(var).map_err(|_| {
            SourceError::Config(format!("`url_env` names the environment variable `{var}`, which is not set (or not UTF-8); export it with the connection string"))
        })?,
        (Some(_), Some(_)) => return Err(SourceError::Config("set either `url` or `url_env` for a postgres source, not both".into())),
        (None, None) => return Err(SourceError::Config("a postgres source needs `url` (or `url_env`): the connection string, e.g. postgresql://user@host:5432/db".into())),
    };
    let pg = Config::from_str(&url).map_err(|e| {
        SourceError::Config(format!(
            "the connection string {} does not parse ({e}); use postgresql://user@host:port/db or `host=… user=… dbname=…`",
            redact_connection_string(&url)
        ))
    })?;
    let target = target_of(&pg);
    Ok((pg, target))
}

/// Connects, prepares the query, checks its column types and starts streaming it.
pub(crate) fn open(cfg: &PostgresConfig) -> Result<ChannelReader, SourceError> {
    let (pg, target) = connection(cfg)?;
    let query = cfg.query.clone();
    let batch = i32::try_from(cfg.batch_size.unwrap_or(DEFAULT_BATCH_SIZE).max(1)).unwrap_or(i32::MAX);
    let describe = format!("query on {target}");
    let budget = cfg.budget;
    ChannelReader::spawn(describe, move |ready, tx| {
        let fail = |message: String, fix: &str| SourceError::Postgres { target: target.clone(), message, fix: fix.to_string() };
        let mut client: Client = match pg.connect(NoTls) {
            Ok(c) => c,
            Err(e) => {
                let _ = ready.send(Err(fail(
                    e.to_string(),
                    "check the host, port, user and database in the connection string and that the server accepts the connection (TLS is not supported)",
                )));
                return;
            }
        };
        let mut txn = match client.build_transaction().read_only(true).start() {
            Ok(t) => t,
            Err(e) => {
                let _ = ready.send(Err(fail(e.to_string(), "the server refused to start a read-only transaction")));
                return;
            }
        };
        let stmt = match txn.prepare(&query) {
            Ok(s) => s,
            Err(e) => {
                let msg = e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string());
                let _ = ready.send(Err(fail(msg, "fix `query`: one SELECT statement that runs in psql")));
                return;
            }
        };
        if !stmt.params().is_empty() {
            let _ = ready.send(Err(fail(
                format!("the query has {} parameter(s)", stmt.params().len()),
                "write the values into `query` instead of $1-style placeholders",
            )));
            return;
        }
        let mut plan = Vec::with_capacity(stmt.columns().len());
        for c in stmt.columns() {
            match decode_of(c.type_()) {
                Some(d) => plan.push((c.name().to_string(), d)),
                None => {
                    let _ = ready.send(Err(SourceError::UnsupportedType {
                        column: c.name().to_string(),
                        type_name: c.type_().name().to_string(),
                    }));
                    return;
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        if let Some((dup, _)) = plan.iter().find(|(n, _)| !seen.insert(n.clone())) {
            let _ = ready.send(Err(fail(format!("the query returns two columns named `{dup}`"), "give every column a distinct name with `AS`")));
            return;
        }
        let portal = match txn.bind(&stmt, &[]) {
            Ok(p) => p,
            Err(e) => {
                let _ = ready.send(Err(fail(e.to_string(), "fix `query`")));
                return;
            }
        };
        if ready.send(Ok(plan.iter().map(|(n, _)| n.clone()).collect())).is_err() {
            return;
        }
        let mut record = 0u64;
        loop {
            let rows = match txn.query_portal(&portal, batch) {
                Ok(r) => r,
                Err(e) => {
                    let msg = e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string());
                    let _ = tx.send(vec![Err(fail(msg, "the query failed while running or the connection was lost; run it again"))]);
                    return;
                }
            };
            if rows.is_empty() {
                break;
            }
            let mut chunk = Vec::with_capacity(rows.len());
            for row in &rows {
                record += 1;
                let mut columns = Vec::with_capacity(plan.len());
                let mut error = None;
                let mut row_bytes = 0usize;
                let at = format!("record {record}");
                for (i, (name, d)) in plan.iter().enumerate() {
                    let cell = match row.try_get::<_, Raw<'_>>(i) {
                        Ok(Raw(None)) => Cell::Null,
                        Ok(Raw(Some(raw))) => {
                            row_bytes = row_bytes.saturating_add(raw.len());
                            match budget.check_cell(&at, name, raw.len(), Origin::Query) {
                                Some(e) => {
                                    error = error.or(Some(e));
                                    Cell::Null
                                }
                                None => decode_cell(*d, raw, name, &at, &mut error),
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(vec![Err(fail(e.to_string(), "this is unexpected; cast the column to text in the query"))]);
                            return;
                        }
                    };
                    columns.push(Column { name: name.clone(), value: cell });
                }
                let error = error.or_else(|| budget.check_row(&at, row_bytes, Origin::Query));
                chunk.push(Ok(RawRecord { record, line: None, columns, error }));
            }
            let short = rows.len() < batch as usize;
            if tx.send(chunk).is_err() {
                return; // the consumer is gone; dropping the transaction rolls back
            }
            if short {
                break;
            }
        }
        let _ = txn.commit();
        let _ = tx.send(Vec::new());
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts() {
        assert_eq!(redact_connection_string("postgresql://bob:s3cret@db:5432/w"), "postgresql://bob:***@db:5432/w");
        assert_eq!(redact_connection_string("postgres://bob@db/w?password=x&sslmode=disable"), "postgres://bob@db/w?password=***&sslmode=disable");
        assert_eq!(redact_connection_string("host=db password='a b\\'c' user=bob"), "host=db password=*** user=bob");
        assert_eq!(redact_connection_string("host=db password = hunter2"), "host=db password=***");
    }

    #[test]
    fn numerics() {
        // 1234.5670 : ndigits 3, weight 0? -> digits [1234, 5670], weight 0, dscale 4
        let mk = |digits: &[i16], weight: i16, sign: u16, dscale: u16| {
            let mut v = Vec::new();
            v.extend((digits.len() as i16).to_be_bytes());
            v.extend(weight.to_be_bytes());
            v.extend(sign.to_be_bytes());
            v.extend(dscale.to_be_bytes());
            for d in digits {
                v.extend(d.to_be_bytes());
            }
            v
        };
        assert_eq!(numeric_text(&mk(&[1234, 5670], 0, 0, 4)).unwrap(), "1234.5670");
        assert_eq!(numeric_text(&mk(&[1, 0], 1, 0x4000, 0)).unwrap(), "-10000");
        assert_eq!(numeric_text(&mk(&[5000], -2, 0, 6)).unwrap(), "0.000050");
        assert_eq!(numeric_text(&mk(&[], 0, 0, 2)).unwrap(), "0.00");
    }
}
