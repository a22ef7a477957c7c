//! Time formats on the Batch wire: RFC 3339 timestamps in bodies, RFC 1123
//! dates in headers, ISO 8601 durations in constraints.

use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// A body timestamp like `2016-09-06T07:02:44.7589958Z`.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A header date like `Fri, 17 Feb 2017 00:00:00 GMT`.
pub(crate) fn rfc1123(t: OffsetDateTime) -> String {
    let fmt = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

/// Parses an RFC 1123 date (`ocp-date`, `Date`); `None` if malformed.
pub(crate) fn parse_rfc1123(s: &str) -> Option<OffsetDateTime> {
    let fmt = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(s.trim(), &fmt)
        .ok()
        .map(|p| p.assume_utc())
}

pub(crate) fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Parses an ISO 8601 duration of the form Batch uses (`PT30M`, `P1D`,
/// `P10675199DT2H48M5.4775807S`). Weeks are accepted; years and months are
/// not, because their length is ambiguous and the service rejects them too.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let rest = s.strip_prefix('P')?;
    let (date, time_part) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    if date.is_empty() && time_part.is_none_or(str::is_empty) {
        return None;
    }
    let mut secs = 0f64;
    let mut parse = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        let mut seen = 0usize;
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let idx = units.iter().position(|(u, _)| *u == c)?;
                if idx < seen || num.is_empty() {
                    return None;
                }
                seen = idx + 1;
                secs += num.parse::<f64>().ok()? * units[idx].1;
                num.clear();
            }
        }
        num.is_empty().then_some(())
    };
    parse(date, &[('W', 604_800.0), ('D', 86_400.0)])?;
    if let Some(t) = time_part {
        if t.is_empty() {
            return None;
        }
        parse(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(secs.min(1e12)))
}

/// Durations longer than this mean "unlimited" (the service's default is
/// `P10675199DT2H48M5.4775807S`, .NET's `TimeSpan.MaxValue`).
pub(crate) const UNLIMITED: Duration = Duration::from_secs(100 * 365 * 86_400);

/// What the service shows for an unlimited constraint.
pub(crate) const UNLIMITED_TEXT: &str = "P10675199DT2H48M5.4775807S";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT30M"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("P1D"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("PT1.5S"), Some(Duration::from_millis(1500)));
        assert!(parse_duration(UNLIMITED_TEXT).unwrap() > UNLIMITED);
        assert_eq!(parse_duration("P"), None);
        assert_eq!(parse_duration("PT"), None);
        assert_eq!(parse_duration("30M"), None);
        assert_eq!(parse_duration("PT5X"), None);
        assert_eq!(parse_duration("PT5S3M"), None);
    }

    #[test]
    fn header_dates_round_trip() {
        let t = parse_rfc1123("Fri, 17 Feb 2017 00:00:00 GMT").unwrap();
        assert_eq!(rfc1123(t), "Fri, 17 Feb 2017 00:00:00 GMT");
    }
}
