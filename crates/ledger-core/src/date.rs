//! Calendar dates (the business date). Every calendar day is a business day, so a date
//! is just a day number; the civil-calendar conversion follows Howard Hinnant's
//! `days_from_civil` / `civil_from_days` algorithms.

use std::fmt;

/// A calendar date, stored as days since 1970-01-01.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a date in the form YYYY-MM-DD")]
pub struct DateError(pub String);

impl Date {
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        if !(1..=9999).contains(&year) {
            return None;
        }
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = month as i32;
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + day as i32 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Some(Date(era * 146_097 + doe - 719_468))
    }

    pub fn ymd(self) -> (i32, u32, u32) {
        let z = self.0 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i32::from(month <= 2);
        (year, month, day)
    }

    /// Parses exactly `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Result<Date, DateError> {
        let err = || DateError(text.to_string());
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(err());
        }
        let num = |s: &str| -> Result<u32, DateError> {
            if s.bytes().all(|c| c.is_ascii_digit()) {
                s.parse().map_err(|_| err())
            } else {
                Err(err())
            }
        };
        let year = num(&text[0..4])?;
        let month = num(&text[5..7])?;
        let day = num(&text[8..10])?;
        Date::from_ymd(year as i32, month, day).ok_or_else(err)
    }

    pub fn add_days(self, days: i64) -> Date {
        let n = i64::from(self.0) + days;
        Date(i32::try_from(n).expect("invariant: date out of range"))
    }

    pub fn next(self) -> Date {
        self.add_days(1)
    }

    /// `self - earlier` in days.
    pub fn days_since(self, earlier: Date) -> i64 {
        i64::from(self.0) - i64::from(earlier.0)
    }

    pub fn day_number(self) -> i32 {
        self.0
    }

    pub fn from_day_number(n: i32) -> Date {
        Date(n)
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl serde::Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Date::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_adds() {
        let d = Date::parse("2026-01-01").unwrap();
        assert_eq!(d.add_days(30).to_string(), "2026-01-31");
        assert_eq!(d.add_days(90).to_string(), "2026-04-01");
        assert_eq!(d.add_days(60).to_string(), "2026-03-02");
        assert_eq!(Date::parse("2024-02-29").unwrap().next().to_string(), "2024-03-01");
        assert_eq!(Date::parse("1970-01-01").unwrap().day_number(), 0);
        for n in -1000..100_000 {
            let d = Date::from_day_number(n);
            assert_eq!(Date::parse(&d.to_string()).unwrap(), d);
        }
    }

    #[test]
    fn rejects_bad_dates() {
        for bad in ["2026-02-29", "2026-13-01", "2026-1-01", "20260101", "2026-01-32", "abcd-ef-gh", "2026-00-10"] {
            assert!(Date::parse(bad).is_err(), "{bad}");
        }
    }
}
