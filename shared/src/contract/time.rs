//! Time as the contract writes it: milliseconds since the Unix epoch, UTC,
//! on the proleptic Gregorian calendar. Calendar arithmetic, RFC 3339
//! formatting (the answers' times, a day's date) and parsing (the `$date`
//! strings of Extended JSON).

/// Days from 1970-01-01 to the given proleptic Gregorian date
/// (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 → proleptic Gregorian (year, month 1..=12, day
/// 1..=31) (Howard Hinnant's `civil_from_days`). Total for any `i64`.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // i128 inside: no overflow even for days near i64::MAX.
    let z = i128::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i128::from(month <= 2);
    let year = i64::try_from(year).unwrap_or(if year < 0 { i64::MIN } else { i64::MAX });
    // month and day are within 1..=31 by construction.
    (year, month as u32, day as u32)
}

pub fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ`; `None` outside years 0 to 9999 (the
/// tests write dates in every Extended JSON form with it).
#[cfg(test)]
pub fn format_rfc3339_millis(ms: i64) -> Option<String> {
    let (year, _, _) = civil_from_days(ms.div_euclid(86_400_000));
    (0..=9999).contains(&year).then(|| format_time(ms))
}

/// The UTC date of a time (ms since the Unix epoch) as `YYYY-MM-DD`: the date
/// part of [`format_time`]. Total over `i64`, years printed as there.
pub fn format_date(ms: i64) -> String {
    let (year, month, day) = civil_from_days(ms.div_euclid(86_400_000));
    let year = if year < 0 {
        format!("-{:04}", year.unsigned_abs())
    } else {
        format!("{year:04}")
    };
    format!("{year}-{month:02}-{day:02}")
}

/// Milliseconds since the Unix epoch (UTC) as RFC 3339 with milliseconds, as
/// the contract prints times: `2021-09-10T12:45:01.123Z`. Total over `i64`:
/// years outside 0..=9999 are printed with as many digits as needed (and a
/// `-` sign before year 0).
pub fn format_time(ms: i64) -> String {
    let in_day = ms.rem_euclid(86_400_000);
    let hour = in_day / 3_600_000;
    let minute = in_day / 60_000 % 60;
    let second = in_day / 1000 % 60;
    let milli = in_day % 1000;
    let date = format_date(ms);
    format!("{date}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z")
}

/// [`format_time`] of an optional time.
pub fn format_time_opt(ms: Option<i64>) -> Option<String> {
    ms.map(format_time)
}

/// An RFC 3339 date-time (`2021-09-10T12:45:01.123Z`, `...+02:00`, with 0 to
/// 9 fraction digits, truncated to milliseconds) as ms since the epoch, UTC.
/// `T` and `Z` may be lower case (RFC 3339 allows it). Leap seconds (`:60`)
/// are rejected: BSON dates have none.
pub fn parse_rfc3339(s: &str) -> Result<i64, &'static str> {
    let b = s.as_bytes();
    let digits = |at: usize, n: usize| -> Option<u32> {
        let part = b.get(at..at + n)?;
        part.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let sep = |at: usize, c: u8| b.get(at).is_some_and(|&x| x.eq_ignore_ascii_case(&c));
    const SHAPE: &str = "expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)";
    let (Some(year), Some(month), Some(day)) = (digits(0, 4), digits(5, 2), digits(8, 2)) else {
        return Err(SHAPE);
    };
    let (Some(hour), Some(minute), Some(second)) = (digits(11, 2), digits(14, 2), digits(17, 2))
    else {
        return Err(SHAPE);
    };
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return Err(SHAPE);
    }
    let mut at = 19;
    let mut millis = 0u32;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 3 {
                millis = millis * 10 + u32::from(b[at] - b'0');
            }
            at += 1;
        }
        let n = at - start;
        if n == 0 {
            return Err("a '.' must be followed by fraction digits");
        }
        if n > 9 {
            return Err("at most 9 fraction digits are allowed");
        }
        for _ in n..3 {
            millis *= 10;
        }
    }
    let offset_minutes: i64 = match b.get(at) {
        Some(b'Z' | b'z') => {
            at += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let (Some(oh), Some(om)) = (digits(at + 1, 2), digits(at + 4, 2)) else {
                return Err(SHAPE);
            };
            if !sep(at + 3, b':') {
                return Err(SHAPE);
            }
            if oh > 23 || om > 59 {
                return Err("the UTC offset is out of range");
            }
            at += 6;
            let minutes = i64::from(oh * 60 + om);
            if sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return Err("missing time zone (Z or an offset like +02:00)"),
    };
    if at != b.len() {
        return Err("unexpected text after the time zone");
    }
    if !(1..=12).contains(&month) {
        return Err("month must be 01 to 12");
    }
    if day < 1 || day > days_in_month(i64::from(year), month) {
        return Err("day is out of range for the month");
    }
    if hour > 23 {
        return Err("hour must be 00 to 23");
    }
    if minute > 59 {
        return Err("minute must be 00 to 59");
    }
    if second > 59 {
        return Err("second must be 00 to 59");
    }
    let days = days_from_civil(i64::from(year), month, day);
    let seconds =
        days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_minutes * 60;
    Ok(seconds * 1000 + i64::from(millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_times() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(1_631_277_901_123), "2021-09-10T12:45:01.123Z");
        assert_eq!(format_time(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_time(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_time(-62_167_219_200_000), "0000-01-01T00:00:00.000Z");
        // Never panics at the extremes.
        assert_eq!(format_time(i64::MAX), "292278994-08-17T07:12:55.807Z");
        assert_eq!(format_time(i64::MIN), "-292275055-05-16T16:47:04.192Z");
        assert_eq!(
            civil_from_days(i64::MAX).1,
            civil_from_days(i64::MAX).1.clamp(1, 12)
        );
        let _ = civil_from_days(i64::MIN);
    }

    #[test]
    fn formats_every_day_of_a_few_years_consistently() {
        // Walk day by day through 1999..2005 and check month/day progression.
        let mut prev: Option<(i32, u32, u32)> = None;
        for day in 10_592..12_784i64 {
            let s = format_time(day * 86_400_000);
            let y: i32 = s[0..4].parse().unwrap();
            let m: u32 = s[5..7].parse().unwrap();
            let d: u32 = s[8..10].parse().unwrap();
            if let Some((py, pm, pd)) = prev {
                let next_ok = (y == py && m == pm && d == pd + 1)
                    || (y == py && m == pm + 1 && d == 1)
                    || (y == py + 1 && m == 1 && d == 1 && pm == 12 && pd == 31);
                assert!(next_ok, "{s} after {py}-{pm}-{pd}");
            }
            prev = Some((y, m, d));
        }
    }

    proptest! {
        #[test]
        fn format_time_is_rfc3339_for_years_0_to_9999(ms in -62_167_219_200_000i64..253_402_300_800_000) {
            let s = format_time(ms);
            proptest::prop_assert_eq!(s.len(), 24);
            proptest::prop_assert_eq!(parse_rfc3339(&s), Ok(ms));
            // The date is the time's first ten characters.
            proptest::prop_assert_eq!(format_date(ms), &s[..10]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn rfc3339_round_trips(ms in -62_167_219_200_000i64..253_402_300_799_999) {
            let iso = format_rfc3339_millis(ms).unwrap();
            prop_assert_eq!(parse_rfc3339(&iso), Ok(ms));
            let days = ms.div_euclid(86_400_000);
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
