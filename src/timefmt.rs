//! Times as people read and type them: UTC minutes for lists, YYYY-MM-DD for filters.

use time::{Date, Month, OffsetDateTime};

/// `YYYY-MM-DD HH:MM` (UTC) for unix seconds.
pub fn format_utc(secs: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!("{:04}-{:02}-{:02} {:02}:{:02}", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute()),
        Err(_) => format!("@{secs}"),
    }
}

/// Today (UTC) as `YYYY-MM-DD`.
pub fn today_utc() -> String {
    let now = OffsetDateTime::now_utc();
    format!("{:04}-{:02}-{:02}", now.year(), u8::from(now.month()), now.day())
}

/// Unix seconds at the start (UTC) of a `YYYY-MM-DD` day; `None` if it is not a real date.
pub fn parse_day(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let y = parts.next()?.parse::<i32>().ok()?;
    let m = Month::try_from(parts.next()?.parse::<u8>().ok()?).ok()?;
    let d = parts.next()?.parse::<u8>().ok()?;
    Some(Date::from_calendar_date(y, m, d).ok()?.midnight().assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_utc() {
        assert_eq!(format_utc(0), "1970-01-01 00:00");
        assert_eq!(format_utc(1_795_564_800 + 3_723), "2026-11-25 01:02");
        assert_eq!(parse_day("2026-11-25"), Some(1_795_564_800));
        assert_eq!(parse_day("2026-02-30"), None);
        assert_eq!(parse_day("yesterday"), None);
    }
}
