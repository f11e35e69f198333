//! Stream time: the sample counter is the clock; wall-clock time is an
//! anchor (UTC at stream start) plus samples elapsed.
//!
//! Replayed recordings are anchored at their recorded start when the file
//! name carries it (AudioMoth and most field recorders write
//! `YYYYMMDD_HHMMSS`, in UTC), so their events carry real dates.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// Finds a `YYYYMMDD_HHMMSS` stamp anywhere in a file name (e.g.
/// `20240312_183000.WAV`, `ST03_20240312_183000.wav`) and reads it as UTC.
pub fn anchor_from_file_name(name: &str) -> Option<OffsetDateTime> {
    let bytes = name.as_bytes();
    (0..bytes.len().saturating_sub(14)).find_map(|i| {
        let candidate = &bytes[i..i + 15];
        let boundary_before = i == 0 || !bytes[i - 1].is_ascii_digit();
        let boundary_after = bytes.get(i + 15).is_none_or(|b| !b.is_ascii_digit());
        if !(boundary_before && boundary_after) {
            return None;
        }
        parse_stamp(candidate)
    })
}

fn parse_stamp(s: &[u8]) -> Option<OffsetDateTime> {
    if s[8] != b'_' || !s[..8].iter().chain(&s[9..]).all(u8::is_ascii_digit) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        std::str::from_utf8(&s[range]).ok()?.parse().ok()
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let day = u8::try_from(num(6..8)?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(
        u8::try_from(num(9..11)?).ok()?,
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(13..15)?).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Parses an RFC 3339 time given on the command line (`--start-time`).
pub fn parse_rfc3339(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("`{text}` is not an RFC 3339 time like 2026-11-26T21:04:11Z: {e}"))
}

/// `t`, already in UTC, as RFC 3339 with milliseconds, the form every
/// time rumbled publishes takes: `2026-11-26T21:04:11.250Z`.
pub(crate) fn rfc3339_millis(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn audiomoth_names_give_utc_anchors() {
        assert_eq!(
            anchor_from_file_name("20240312_183005.WAV"),
            Some(datetime!(2024-03-12 18:30:05 UTC))
        );
        assert_eq!(
            anchor_from_file_name("ST03_20240312_183005_rec.flac"),
            Some(datetime!(2024-03-12 18:30:05 UTC))
        );
    }

    #[test]
    fn names_without_a_valid_stamp_give_none() {
        for name in [
            "demo.wav",
            "20241312_183005.wav",
            "120240312_183005.wav",
            "20240312-183005.wav",
            "20240312_246000.wav",
            "",
        ] {
            assert_eq!(anchor_from_file_name(name), None, "{name}");
        }
    }

    #[test]
    fn start_time_flag_accepts_rfc3339_and_explains_errors() {
        assert_eq!(
            parse_rfc3339("2026-11-26T21:04:11.5Z"),
            Ok(datetime!(2026-11-26 21:04:11.5 UTC))
        );
        assert!(parse_rfc3339("yesterday").unwrap_err().contains("RFC 3339"));
    }
}
