//! Bounded retries of one delivery: backon's exponential schedule with jitter, at most
//! `max_attempts` attempts and `max_total` from the first attempt to giving up. Time is
//! tokio's, so `start_paused` tests see the whole schedule in no real time.
//!
//! What is retried follows the remote-write and PagerDuty rules: transport errors, timeouts,
//! 408, 429 and 5xx; any other 4xx is the request's fault and never succeeds by repetition.

use std::future::Future;
use std::time::Duration;

use backon::BackoffBuilder as _;

/// How hard one delivery is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts at most, the first included (at least 1).
    pub max_attempts: usize,
    /// From the first attempt to the last moment a retry may start.
    pub max_total: Duration,
    /// The first retry's base delay; each retry doubles it (plus up to as much again of
    /// jitter, backon's `with_jitter`).
    pub min_delay: Duration,
    /// The base delay's cap.
    pub max_delay: Duration,
    /// One attempt's timeout (connect, send, answer).
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            max_total: Duration::from_secs(120),
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Accepted.
    Done,
    /// Failed in a way another attempt may fix; the server may say when (`Retry-After`).
    Retry(String, Option<Duration>),
    /// Failed for good (the request itself is wrong).
    Fatal(String),
}

impl Attempt {
    /// Classifies an HTTP answer (or its absence).
    pub fn from_response(r: Result<super::http::Response, super::http::PostError>) -> Attempt {
        match r {
            Ok(r) if (200..300).contains(&r.status) => Attempt::Done,
            Ok(r) if r.status == 408 || r.status == 429 || r.status >= 500 => {
                Attempt::Retry(format!("HTTP {}", r.status), r.retry_after)
            }
            Ok(r) => Attempt::Fatal(format!(
                "HTTP {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body[..r.body.len().min(200)])
            )),
            Err(e) => Attempt::Retry(e.to_string(), None),
        }
    }
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Whether some attempt was accepted.
    pub delivered: bool,
    /// Attempts made.
    pub attempts: usize,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// Runs `attempt` (given the attempt number, from 1) until it is done, fails for good, or the
/// policy's attempts or total time run out.
pub async fn deliver<F, Fut>(policy: &RetryPolicy, mut attempt: F) -> Outcome
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Attempt>,
{
    let start = tokio::time::Instant::now();
    let mut schedule = backon::ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay.max(policy.min_delay))
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(policy.max_attempts.max(1) - 1)
        .build();
    let mut n = 0;
    loop {
        n += 1;
        let left = policy.max_total.saturating_sub(start.elapsed());
        let result = tokio::time::timeout(
            policy.timeout.min(left).max(Duration::from_millis(1)),
            attempt(n),
        )
        .await
        .unwrap_or_else(|_| Attempt::Retry("timed out".into(), None));
        let (error, server_wait) = match result {
            Attempt::Done => {
                return Outcome {
                    delivered: true,
                    attempts: n,
                    last_error: None,
                };
            }
            Attempt::Fatal(e) => {
                return Outcome {
                    delivered: false,
                    attempts: n,
                    last_error: Some(e),
                };
            }
            Attempt::Retry(e, wait) => (e, wait),
        };
        let give_up = Outcome {
            delivered: false,
            attempts: n,
            last_error: Some(error.clone()),
        };
        let Some(delay) = schedule.next() else {
            return give_up;
        };
        let delay = delay.max(server_wait.unwrap_or_default());
        if start.elapsed() + delay >= policy.max_total {
            return give_up;
        }
        tracing::debug!(attempt = n, %error, delay_ms = delay.as_millis(), "alert delivery failed; retrying");
        tokio::time::sleep(delay).await;
    }
}
