//! Cell conversions shared by every source: type hints, timestamps, JSON.
//!
//! Everything here is pure and allocation-light; a conversion failure is a plain reason string
//! that the caller wraps into an invalid row naming the column.

use super::TypeHint;
use crate::contract::model::Cell;

/// Microseconds between 1970-01-01 and 2000-01-01 (the PostgreSQL epoch).
pub(crate) const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800 * 1_000_000;

/// Applies a type hint to a cell; NULL stays NULL whatever the hint.
pub(crate) fn coerce(cell: Cell, hint: TypeHint) -> Result<Cell, String> {
    if cell == Cell::Null {
        return Ok(Cell::Null);
    }
    match hint {
        TypeHint::Text => Ok(match cell {
            Cell::Text(_) => cell,
            other => Cell::Text(other.as_key_text().unwrap_or_default()),
        }),
        TypeHint::Integer => match cell {
            Cell::Integer(_) => Ok(cell),
            Cell::Float(f) if f.fract() == 0.0 && (-9.2e18..=9.2e18).contains(&f) => Ok(Cell::Integer(f as i64)),
            Cell::Text(s) => {
                let t = s.trim();
                t.parse::<i64>()
                    .map(Cell::Integer)
                    .map_err(|_| format!("`{}` is not a whole number (expected e.g. 42 or -7)", short(t)))
            }
            other => Err(format!("a {} value cannot be read as an integer", cell_kind(&other))),
        },
        TypeHint::Float => match cell {
            Cell::Float(_) => Ok(cell),
            Cell::Integer(i) => Ok(Cell::Float(i as f64)),
            Cell::Text(s) => parse_float(s.trim()).map(Cell::Float),
            other => Err(format!("a {} value cannot be read as a number", cell_kind(&other))),
        },
        TypeHint::Boolean => match cell {
            Cell::Boolean(_) => Ok(cell),
            Cell::Integer(0) => Ok(Cell::Boolean(false)),
            Cell::Integer(1) => Ok(Cell::Boolean(true)),
            Cell::Integer(i) => Err(format!("{i} is not a boolean (expected 0 or 1)")),
            Cell::Text(s) => parse_bool(&s).map(Cell::Boolean),
            other => Err(format!("a {} value cannot be read as a boolean", cell_kind(&other))),
        },
        TypeHint::Timestamp => match cell {
            Cell::Timestamp(_) => Ok(cell),
            Cell::Text(s) => normalize_timestamp(&s).map(Cell::Timestamp),
            Cell::Integer(secs) => unix_seconds_to_rfc3339(secs).map(Cell::Timestamp),
            other => Err(format!("a {} value cannot be read as a timestamp", cell_kind(&other))),
        },
        TypeHint::Json => match cell {
            Cell::Json(_) => Ok(cell),
            Cell::Text(s) => canonical_json(&s).map(Cell::Json),
            Cell::Boolean(b) => Ok(Cell::Json(b.to_string())),
            Cell::Integer(i) => Ok(Cell::Json(i.to_string())),
            Cell::Float(f) => serde_json::Number::from_f64(f)
                .map(|n| Cell::Json(n.to_string()))
                .ok_or_else(|| format!("{f} cannot be written as JSON")),
            Cell::Timestamp(s) => Ok(Cell::Json(serde_json::Value::String(s).to_string())),
            Cell::Null => Ok(Cell::Null),
        },
    }
}

fn cell_kind(cell: &Cell) -> &'static str {
    match cell {
        Cell::Null => "null",
        Cell::Boolean(_) => "boolean",
        Cell::Integer(_) => "integer",
        Cell::Float(_) => "float",
        Cell::Text(_) => "text",
        Cell::Timestamp(_) => "timestamp",
        Cell::Json(_) => "JSON",
    }
}

/// At most 40 characters of a value, for error messages.
pub(crate) fn short(s: &str) -> String {
    if s.chars().count() <= 40 {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(40).collect();
        out.push('…');
        out
    }
}

/// A finite float from text.
pub(crate) fn parse_float(t: &str) -> Result<f64, String> {
    match t.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(f),
        Ok(_) => Err(format!("`{}` is not a finite number", short(t))),
        Err(_) => Err(format!("`{}` is not a number (expected e.g. 12.5)", short(t))),
    }
}

/// `true/false`, `t/f`, `yes/no`, `y/n`, `1/0`, `on/off`, any case, surrounding blanks ignored.
pub(crate) fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" | "on" => Ok(true),
        "false" | "f" | "no" | "n" | "0" | "off" => Ok(false),
        _ => Err(format!("`{}` is not a boolean (expected true/false, yes/no or 1/0)", short(s.trim()))),
    }
}

/// Parses JSON text and writes it back compactly (object keys sorted), so equal documents give
/// equal text whatever their spacing.
pub(crate) fn canonical_json(s: &str) -> Result<String, String> {
    serde_json::from_str::<serde_json::Value>(s)
        .map(|v| v.to_string())
        .map_err(|e| format!("not valid JSON ({e})"))
}

/// Days since 1970-01-01 for a civil date (proleptic Gregorian).
#[cfg(test)]
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let d = i64::from(d);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date for days since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD` for days since 1970-01-01; years outside 0..=9999 are refused.
pub(crate) fn format_date(days: i64) -> Result<String, String> {
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return Err(format!("the year {y} is outside 0000-9999"));
    }
    Ok(format!("{y:04}-{m:02}-{d:02}"))
}

/// RFC 3339 in UTC (`Z`) for microseconds since the Unix epoch; the fraction is written only
/// when it is not zero (6 digits).
pub(crate) fn unix_micros_to_rfc3339(micros: i64) -> Result<String, String> {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let date = format_date(days)?;
    let (h, mi, s) = (sod / 3600, (sod / 60) % 60, sod % 60);
    if frac == 0 {
        Ok(format!("{date}T{h:02}:{mi:02}:{s:02}Z"))
    } else {
        Ok(format!("{date}T{h:02}:{mi:02}:{s:02}.{frac:06}Z"))
    }
}

/// RFC 3339 in UTC for whole seconds since the Unix epoch.
pub(crate) fn unix_seconds_to_rfc3339(secs: i64) -> Result<String, String> {
    secs.checked_mul(1_000_000)
        .ok_or_else(|| format!("{secs} seconds since 1970 is out of range"))
        .and_then(unix_micros_to_rfc3339)
}

/// RFC 3339 in UTC for a Julian day number (SQLite's REAL date convention).
pub(crate) fn julian_day_to_rfc3339(jd: f64) -> Result<String, String> {
    if !jd.is_finite() {
        return Err(format!("{jd} is not a Julian day number"));
    }
    let micros = ((jd - 2_440_587.5) * 86_400_000_000.0).round();
    if micros.abs() > 2.5e17 {
        return Err(format!("Julian day {jd} is out of range"));
    }
    unix_micros_to_rfc3339(micros as i64)
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    let mut v = 0u32;
    for c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        _ => 28,
    }
}

/// Normalizes timestamp text to RFC 3339.
///
/// Accepted: `YYYY-MM-DD` (midnight UTC), `YYYY-MM-DD[T| ]HH:MM[:SS[.fraction]]` followed by
/// nothing or ` UTC` (both read as UTC, written `Z`), `Z`, or an offset `±HH:MM`, `±HHMM`,
/// `±HH`. The output is `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`: the offset is kept, not
/// converted, so the instant is unchanged.
pub(crate) fn normalize_timestamp(input: &str) -> Result<String, String> {
    let s = input.trim();
    let fail = || {
        format!(
            "`{}` is not a timestamp (expected RFC 3339 like 2024-05-01T13:45:00Z, or 2024-05-01 13:45:00, or 2024-05-01)",
            short(s)
        )
    };
    let b = s.as_bytes();
    let (y, mo, d) = match (digits(b, 0, 4), b.get(4), digits(b, 5, 2), b.get(7), digits(b, 8, 2)) {
        (Some(y), Some(b'-'), Some(mo), Some(b'-'), Some(d)) => (y, mo, d),
        _ => return Err(fail()),
    };
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) {
        return Err(format!("`{}` is not a calendar date", short(s)));
    }
    if b.len() == 10 {
        return Ok(format!("{y:04}-{mo:02}-{d:02}T00:00:00Z"));
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return Err(fail());
    }
    let (h, mi) = match (digits(b, 11, 2), b.get(13), digits(b, 14, 2)) {
        (Some(h), Some(b':'), Some(mi)) => (h, mi),
        _ => return Err(fail()),
    };
    let mut i = 16;
    let mut sec = 0;
    if b.get(i) == Some(&b':') {
        sec = digits(b, i + 1, 2).ok_or_else(fail)?;
        i += 3;
    }
    let mut frac = "";
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        let start = i + 1;
        let mut end = start;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if end == start {
            return Err(fail());
        }
        frac = &s[start..end];
        i = end;
    }
    if h > 23 || mi > 59 || sec > 60 {
        return Err(format!("`{}` has an impossible time of day", short(s)));
    }
    let rest = &s[i..];
    let offset = match rest {
        "" | "Z" | "z" | " UTC" | " utc" | " Z" | "+00" | "+0000" | "+00:00" => "Z".to_string(),
        _ => {
            let r = rest.trim_start().as_bytes();
            let sign = match r.first() {
                Some(b'+') => '+',
                Some(b'-') => '-',
                _ => return Err(fail()),
            };
            let oh = digits(r, 1, 2).ok_or_else(fail)?;
            let om = match r.len() {
                3 => 0,
                5 => digits(r, 3, 2).ok_or_else(fail)?,
                6 if r[3] == b':' => digits(r, 4, 2).ok_or_else(fail)?,
                _ => return Err(fail()),
            };
            if oh > 23 || om > 59 {
                return Err(fail());
            }
            if oh == 0 && om == 0 {
                "Z".to_string()
            } else {
                format!("{sign}{oh:02}:{om:02}")
            }
        }
    };
    let frac = if frac.is_empty() { String::new() } else { format!(".{frac}") };
    Ok(format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}{frac}{offset}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for days in [-800_000, -1, 0, 1, 10_957, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(format_date(0).unwrap(), "1970-01-01");
        assert_eq!(format_date(10_957).unwrap(), "2000-01-01");
    }

    #[test]
    fn timestamps_normalize() {
        let ok = [
            ("2024-05-01", "2024-05-01T00:00:00Z"),
            ("2024-05-01 13:45", "2024-05-01T13:45:00Z"),
            ("2024-05-01 13:45:07", "2024-05-01T13:45:07Z"),
            ("2024-05-01T13:45:07.250Z", "2024-05-01T13:45:07.250Z"),
            ("2024-05-01T13:45:07+02:00", "2024-05-01T13:45:07+02:00"),
            ("2024-05-01T13:45:07-0530", "2024-05-01T13:45:07-05:30"),
            ("2024-05-01 13:45:07 UTC", "2024-05-01T13:45:07Z"),
            ("2024-02-29", "2024-02-29T00:00:00Z"),
        ];
        for (i, o) in ok {
            assert_eq!(normalize_timestamp(i).as_deref(), Ok(o), "{i}");
        }
        for bad in ["", "yesterday", "2023-02-29", "2024-13-01", "2024-05-01T25:00", "2024-05-01X", "05/01/2024"] {
            assert!(normalize_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn micros_format() {
        assert_eq!(unix_micros_to_rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(unix_micros_to_rfc3339(-1).unwrap(), "1969-12-31T23:59:59.999999Z");
        assert_eq!(unix_seconds_to_rfc3339(1_700_000_000).unwrap(), "2023-11-14T22:13:20Z");
        assert_eq!(julian_day_to_rfc3339(2_440_587.5).unwrap(), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn hints() {
        assert_eq!(coerce(Cell::Text(" 42 ".into()), TypeHint::Integer), Ok(Cell::Integer(42)));
        assert!(coerce(Cell::Text("4x".into()), TypeHint::Integer).is_err());
        assert_eq!(coerce(Cell::Integer(1), TypeHint::Boolean), Ok(Cell::Boolean(true)));
        assert_eq!(coerce(Cell::Text("No".into()), TypeHint::Boolean), Ok(Cell::Boolean(false)));
        assert!(coerce(Cell::Text("NaN".into()), TypeHint::Float).is_err());
        assert_eq!(coerce(Cell::Text("{ \"b\":1, \"a\":2 }".into()), TypeHint::Json), Ok(Cell::Json("{\"a\":2,\"b\":1}".into())));
        assert_eq!(coerce(Cell::Integer(7), TypeHint::Text), Ok(Cell::Text("7".into())));
        assert_eq!(coerce(Cell::Null, TypeHint::Integer), Ok(Cell::Null));
    }
}
