//! Timestamps as logs write them, to Unix seconds (UTC), without a date library: the civil-date
//! arithmetic is Howard Hinnant's `days_from_civil`, and parsers remember the last text they read
//! (consecutive lines mostly share their second).

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `1970-01-01T00:00:00Z` for Unix seconds.
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn num(b: &[u8]) -> Option<u32> {
    let mut n = 0u32;
    if b.is_empty() {
        return None;
    }
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    Some(n)
}

fn check(y: u32, m: u32, d: u32, hh: u32, mm: u32, ss: u32) -> Option<()> {
    ((1..=12).contains(&m) && (1..=31).contains(&d) && hh < 24 && mm < 60 && ss <= 60 && y >= 1970)
        .then_some(())
}

fn unix(y: u32, m: u32, d: u32, hh: u32, mm: u32, ss: u32) -> i64 {
    days_from_civil(i64::from(y), m, d) * 86_400
        + i64::from(hh) * 3600
        + i64::from(mm) * 60
        + i64::from(ss)
}

/// The common log format's `10/Oct/2000:13:55:36 -0700` (without the brackets).
pub fn clf(b: &[u8]) -> Option<i64> {
    if b.len() < 20 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' {
        return None;
    }
    let d = num(&b[0..2])?;
    let m = match &b[3..6] {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    let y = num(&b[7..11])?;
    let (hh, mm, ss) = hms(&b[12..20])?;
    check(y, m, d, hh, mm, ss)?;
    let mut t = unix(y, m, d, hh, mm, ss);
    let zone = b[20..].strip_prefix(b" ").unwrap_or(&b[20..]);
    if zone.len() == 5 && (zone[0] == b'+' || zone[0] == b'-') {
        let off = i64::from(num(&zone[1..3])? * 3600 + num(&zone[3..5])? * 60);
        t -= if zone[0] == b'+' { off } else { -off };
    } else if !zone.is_empty() {
        return None;
    }
    Some(t)
}

fn hms(b: &[u8]) -> Option<(u32, u32, u32)> {
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    Some((num(&b[0..2])?, num(&b[3..5])?, num(&b[6..8])?))
}

/// `2019-12-04` and `21:02:31` (W3C, CloudFront standard logs; UTC).
pub fn date_time(date: &[u8], time: &[u8]) -> Option<i64> {
    if date.len() != 10 || date[4] != b'-' || date[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(&date[0..4])?, num(&date[5..7])?, num(&date[8..10])?);
    let (hh, mm, ss) = hms(time)?;
    check(y, m, d, hh, mm, ss)?;
    Some(unix(y, m, d, hh, mm, ss))
}

/// RFC 3339 (`2024-01-02T03:04:05Z`, fractions and offsets allowed).
pub fn rfc3339_parse(b: &[u8]) -> Option<i64> {
    if b.len() < 20 || (b[10] != b'T' && b[10] != b't' && b[10] != b' ') {
        return None;
    }
    let mut t = date_time(&b[..10], &b[11..19])?;
    let mut rest = &b[19..];
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        rest = &rest[1 + n..];
    }
    match rest {
        b"Z" | b"z" => {}
        [s @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let off = i64::from(num(&[*h1, *h2])? * 3600 + num(&[*m1, *m2])? * 60);
            t -= if *s == b'+' { off } else { -off };
        }
        _ => return None,
    }
    Some(t)
}

/// Epoch numbers: seconds (`1607643233`, `1607643233.123`), milliseconds or nanoseconds (told apart by
/// their size: Cloudflare's `unixnano` default).
pub fn epoch(b: &[u8]) -> Option<i64> {
    let int = match memchr::memchr(b'.', b) {
        Some(i) => &b[..i],
        None => b,
    };
    let n = i64::try_from(crate::record::digits(int)?).ok()?;
    Some(epoch_int(n))
}

/// An integer epoch in seconds, milliseconds or nanoseconds.
pub fn epoch_int(n: i64) -> i64 {
    if n > 100_000_000_000_000 {
        n / 1_000_000_000
    } else if n > 100_000_000_000 {
        n / 1000
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_agree_on_the_same_instant() {
        let t = 971_211_336; // 2000-10-10T20:55:36Z
        assert_eq!(clf(b"10/Oct/2000:13:55:36 -0700"), Some(t));
        assert_eq!(clf(b"10/Oct/2000:20:55:36 +0000"), Some(t));
        assert_eq!(date_time(b"2000-10-10", b"20:55:36"), Some(t));
        assert_eq!(rfc3339_parse(b"2000-10-10T20:55:36Z"), Some(t));
        assert_eq!(rfc3339_parse(b"2000-10-10T22:55:36.25+02:00"), Some(t));
        assert_eq!(epoch(b"971211336.123"), Some(t));
        assert_eq!(epoch(b"971211336123"), Some(t));
        assert_eq!(epoch(b"971211336123456789"), Some(t));
        assert_eq!(rfc3339(t), "2000-10-10T20:55:36Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn garbage_is_none() {
        for b in [
            &b""[..],
            b"10/Foo/2000:13:55:36 -0700",
            b"10/Oct/2000:25:55:36 -0700",
            b"10/Oct/2000:13:55:36 junk!",
            b"99/Oct/2000:13:55:36 +0000",
        ] {
            assert_eq!(clf(b), None, "{}", String::from_utf8_lossy(b));
        }
        assert_eq!(date_time(b"2000-13-01", b"00:00:00"), None);
        assert_eq!(epoch(b"-5"), None);
    }

    proptest::proptest! {
        #[test]
        fn rfc3339_round_trips(t in 0i64..4_102_444_800) {
            proptest::prop_assert_eq!(rfc3339_parse(rfc3339(t).as_bytes()), Some(t));
        }
    }
}
