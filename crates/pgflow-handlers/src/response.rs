//! HTTP plumbing shared by the `http` and `llm` kinds: one request's time
//! budget, reading a body with a size cap, and turning statuses and
//! transport errors into retryable or permanent failures.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode};

use url::Url;

use crate::error::HandlerError;
use crate::spec::bounded;
use crate::task_env::TaskEnv;

/// Characters of a failed response's body kept in the error message.
const BODY_EXCERPT: usize = 300;

/// How long one request may take: the spec's `timeout` (if any), cut to
/// the time left before the step's deadline. `Err` when no time is left.
pub(crate) fn request_budget(
    spec_timeout: Option<Duration>,
    task: &TaskEnv,
) -> Result<Budget, HandlerError> {
    let remaining = task.remaining();
    if remaining.is_zero() {
        return Err(HandlerError::retryable(
            "no time left before the step's deadline to send the request",
        ));
    }
    Ok(match spec_timeout {
        Some(timeout) if timeout <= remaining => Budget {
            timeout,
            source: "handler.timeout",
        },
        _ => Budget {
            timeout: remaining,
            source: "the step's timeout",
        },
    })
}

/// A request's timeout and what set it (for the error message).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    pub(crate) timeout: Duration,
    pub(crate) source: &'static str,
}

/// A transport failure (no response, or the body broke off): always
/// retryable, with reqwest's cause chain but without the URL (the caller
/// names the request its own way).
pub(crate) fn transport_failure(what: &str, error: reqwest::Error, budget: Budget) -> HandlerError {
    if error.is_timeout() {
        return HandlerError::retryable(format!(
            "{what}: timed out after {:.1}s ({})",
            budget.timeout.as_secs_f64(),
            budget.source
        ));
    }
    let error = error.without_url();
    let mut message = format!("{what}: {error}");
    let mut cause = error.source();
    while let Some(e) = cause {
        message.push_str(": ");
        message.push_str(&e.to_string());
        cause = e.source();
    }
    HandlerError::retryable(message)
}

/// Reads the whole body, refusing more than `limit` bytes (stops reading as
/// soon as the limit is passed).
pub(crate) async fn read_limited(
    what: &str,
    response: &mut Response,
    limit: u64,
    limit_field: &str,
    budget: Budget,
) -> Result<Vec<u8>, HandlerError> {
    let too_large = || {
        HandlerError::permanent(format!(
            "{what}: the response body is larger than {limit_field} ({limit} bytes); stopped reading"
        ))
    };
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_failure(what, e, budget))?
    {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether another attempt at a request that got `status` could succeed:
/// timeouts (408), rate limits (429) and server errors (5xx) are worth
/// retrying; other statuses (4xx, 3xx left after redirects) mean the request
/// itself is wrong and will be refused again.
pub(crate) fn status_is_retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// The failure for a non-2xx `status`, with `detail` (an excerpt of what
/// the server said) and the `Retry-After` the server sent.
pub(crate) fn status_failure(
    what: &str,
    status: StatusCode,
    headers: &HeaderMap,
    detail: &str,
) -> HandlerError {
    let detail = detail.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut message = format!("{what}: HTTP {status}");
    if !detail.is_empty() {
        message.push_str(": ");
        message.push_str(&bounded(&detail, BODY_EXCERPT));
    }
    if status_is_retryable(status) {
        HandlerError::retryable(message).with_retry_after(retry_after(headers))
    } else {
        HandlerError::permanent(message)
    }
}

/// `Retry-After` as a delay: either whole seconds or an HTTP date (a date
/// in the past means no delay).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Parses an absolute http(s) URL with a host.
pub(crate) fn parse_http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme \"{}\" is not http or https", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    Ok(url)
}

/// The URL as error messages show it: no credentials, no query string
/// (either may carry secrets).
pub(crate) fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn with_retry_after(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_reads_seconds_dates_and_ignores_garbage() {
        assert_eq!(
            retry_after(&with_retry_after("120")),
            Some(Duration::from_secs(120))
        );
        let past = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH);
        assert_eq!(retry_after(&with_retry_after(&past)), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
        let delay = retry_after(&with_retry_after(&later)).unwrap();
        // HTTP dates have whole seconds: an hour ahead, give or take one.
        assert!(delay > Duration::from_secs(3598) && delay <= Duration::from_secs(3600));
        assert_eq!(retry_after(&with_retry_after("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn statuses_split_into_retryable_and_permanent() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(
                status_is_retryable(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [300, 304, 400, 401, 403, 404, 409, 422] {
            assert!(
                !status_is_retryable(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }

    #[test]
    fn shown_url_drops_credentials_and_query() {
        let url = Url::parse("https://user:pw@example.com/a/b?token=s3cret#frag").unwrap();
        assert_eq!(shown_url(&url), "https://example.com/a/b");
    }
}
