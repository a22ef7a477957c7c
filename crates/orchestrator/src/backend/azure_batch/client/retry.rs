//! When to try a Batch call again, and how long to wait first.

use std::time::{Duration, SystemTime};

use super::clock::parse_rfc1123;
use super::random::unit_random;

/// Retry timing. Defaults follow what long-running Batch clients use in practice.
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    /// Attempts for a retryable failure (408, 429, 5xx, I/O), including the first.
    pub(crate) max_attempts: u32,
    /// First backoff; doubles each attempt.
    pub(crate) base: Duration,
    /// Backoff cap (a server's Retry-After is honoured up to `max_retry_after`).
    pub(crate) max: Duration,
    /// Longest Retry-After we accept before treating it as `max_retry_after`.
    pub(crate) max_retry_after: Duration,
    /// Fixed wait on `ActiveJobAndScheduleQuotaReached`, and how many times.
    pub(crate) quota_wait: Duration,
    pub(crate) quota_attempts: u32,
    /// Per-attempt HTTP timeout.
    pub(crate) timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            base: Duration::from_millis(250),
            max: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            quota_wait: Duration::from_secs(120),
            quota_attempts: 5,
            timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Backoff before attempt `attempt + 1`: the server's Retry-After when given (capped),
    /// else exponential from `base` with ±25% jitter, capped at `max`.
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(self.max_retry_after);
        }
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let capped = exp.min(self.max);
        let jitter = 0.75 + 0.5 * unit_random();
        capped.mul_f64(jitter)
    }
}

/// `Retry-After` is either delta-seconds or an HTTP date.
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = parse_rfc1123(v)?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        let p = RetryPolicy::default();
        for attempt in 1..12 {
            let d = p.delay(attempt, None);
            let nominal = p.base.saturating_mul(1 << (attempt - 1)).min(p.max);
            assert!(
                d >= nominal.mul_f64(0.75) && d <= nominal.mul_f64(1.25),
                "{attempt}: {d:?}"
            );
        }
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(9999))),
            p.max_retry_after
        );
    }
}
