//! The security model, in one middleware ([`guard`]) plus a startup check:
//!
//! 1. **Where it listens** ([`check_listen`]): a loopback address by default;
//!    any other address is refused unless an auth token is set.
//! 2. **Host** (loopback binds only): requests must name a loopback host
//!    (`localhost`, `127.x.x.x`, `[::1]`), so a DNS-rebinding page cannot
//!    read the dashboard through a name of its own.
//! 3. **Auth** (when a token is set): every request but the login page and
//!    the static assets needs `Authorization: Bearer <token>` or the login
//!    cookie (`HttpOnly; SameSite=Strict`, a random per-process session id,
//!    never the token itself).
//! 4. **CSRF** (every POST): the per-process CSRF token in the
//!    `x-csrf-token` header or the `csrf_token` form field, and an
//!    `Origin` (or `Referer`) naming this same host when the browser sends
//!    one; `Sec-Fetch-Site: cross-site` is refused outright.
//! 5. **Actions** (cancel, retry, start) answer 403 unless `allow_actions`;
//!    their buttons are not rendered then either (see `routes::actions`).

use std::net::SocketAddr;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

use crate::error::{DashboardError, JsonError};
use crate::state::AppState;

/// Name of the login cookie.
pub const SESSION_COOKIE: &str = "pgflow_dashboard_session";
/// Header carrying the CSRF token (JavaScript and API clients).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Form field carrying the CSRF token (HTML forms).
pub const CSRF_FIELD: &str = "csrf_token";
/// Sent with every response: scripts only from /assets, inline styles
/// allowed (progress and timeline widths), no framing, forms only to us.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; \
    form-action 'self'; base-uri 'none'";
/// Largest POST body read (the start-a-run form carries a JSON input).
pub const MAX_FORM_BYTES: usize = 4 * 1024 * 1024;

/// Refuses to serve a non-loopback address without an auth token.
pub fn check_listen(listen: SocketAddr, auth_token: Option<&str>) -> Result<(), String> {
    if let Some(token) = auth_token {
        if token.trim().len() < 8 {
            return Err(
                "the dashboard auth token must be at least 8 characters long (--auth-token or PGFLOW_DASHBOARD_TOKEN)"
                    .into(),
            );
        }
        return Ok(());
    }
    if listen.ip().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "refusing to listen on {listen} without authentication: {ip} is not a loopback address, \
         so anyone who can reach it could read every run (and act on them with --allow-actions). \
         Set an auth token with --auth-token TOKEN (or the PGFLOW_DASHBOARD_TOKEN environment \
         variable), or listen on 127.0.0.1",
        ip = listen.ip()
    ))
}

/// Compares two secrets without leaking where they differ (digests first,
/// so the length does not leak either).
pub fn secrets_match(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The `Set-Cookie` value that logs a browser in.
pub fn session_cookie(session_id: &str) -> String {
    format!("{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Strict")
}

/// The `Set-Cookie` value that logs a browser out.
pub fn clear_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

fn is_json_client(headers: &HeaderMap, path: &str) -> bool {
    path.starts_with("/api/")
        || path == "/metrics"
        || path == "/events"
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json") && !v.contains("text/html"))
}

fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [::1]:8080
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

fn is_loopback_host(host: &str) -> bool {
    let name = host_name(host);
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn is_authenticated(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = state.settings.auth_token.as_deref() else {
        return true;
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|given| secrets_match(given.trim(), token)) {
        return true;
    }
    cookie(headers, SESSION_COOKIE)
        .is_some_and(|given| secrets_match(given, &state.secrets.session_id))
}

/// Same-origin check for a POST: `Origin` (or else `Referer`) must name the
/// host the request was sent to; cross-site fetch metadata is refused.
fn check_origin(headers: &HeaderMap) -> Result<(), DashboardError> {
    let forbid = |why: String| Err(DashboardError::Forbidden(why));
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return forbid("cross-site request refused (Sec-Fetch-Site: cross-site)".into());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    let Some(origin) = origin else {
        // Not a browser (curl, scripts): the CSRF token alone decides.
        return Ok(());
    };
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(""))
        .unwrap_or("");
    if origin_host.is_empty() || !origin_host.eq_ignore_ascii_case(host) {
        return forbid(format!(
            "cross-origin POST refused: origin {origin:?} is not this dashboard ({host})"
        ));
    }
    Ok(())
}

/// Finds the CSRF token in the header, or else in a form body (which is read
/// and put back for the handler).
async fn csrf_token_of(request: Request) -> Result<(Option<String>, Request), DashboardError> {
    if let Some(token) = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        return Ok((Some(token.to_owned()), request));
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((None, request));
    }
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BYTES).await.map_err(|_| {
        DashboardError::BadRequest(format!("form body over {MAX_FORM_BYTES} bytes"))
    })?;
    let token = form_urlencoded_field(&bytes, CSRF_FIELD);
    Ok((token, Request::from_parts(parts, Body::from(bytes))))
}

/// The raw value of a form field. The CSRF token is alphanumeric, which
/// forms never percent-encode, so no decoding is needed to compare it.
fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

fn refuse(json: bool, err: DashboardError) -> Response {
    if json {
        JsonError(err).into_response()
    } else {
        err.into_response()
    }
}

/// The middleware in front of every route: host, auth, CSRF (see the module
/// docs for the order and the reasons).
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let json = is_json_client(request.headers(), &path);
    if state.settings.loopback_only {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_loopback_host(host) {
            return refuse(
                json,
                DashboardError::Forbidden(format!(
                    "this dashboard listens on a loopback address and only answers to localhost; \
                     refused Host {host:?}"
                )),
            );
        }
    }
    let public = path == "/login" || path.starts_with("/assets/");
    if !public && !is_authenticated(&state, request.headers()) {
        if json || request.method() != Method::GET {
            return refuse(true, DashboardError::Unauthorized);
        }
        return Redirect::to("/login").into_response();
    }
    let request = if request.method() == Method::POST {
        if let Err(err) = check_origin(request.headers()) {
            return refuse(json, err);
        }
        let (token, request) = match csrf_token_of(request).await {
            Ok(found) => found,
            Err(err) => return refuse(json, err),
        };
        if !token.is_some_and(|t| secrets_match(&t, &state.secrets.csrf_token)) {
            return refuse(
                json,
                DashboardError::Forbidden(
                    "missing or wrong CSRF token: reload the page and try again".into(),
                ),
            );
        }
        request
    } else {
        request
    };
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    // Lets the bench (and curious operators) read server time per request.
    let timing = format!("app;dur={:.2}", started.elapsed().as_secs_f64() * 1000.0);
    if let Ok(value) = timing.parse() {
        response.headers_mut().insert("server-timing", value);
    }
    // Defence in depth: only our own script runs, no framing (clickjacking of
    // the action buttons), no MIME sniffing of JSON into HTML.
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        axum::http::HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        axum::http::HeaderValue::from_static("DENY"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        axum::http::HeaderValue::from_static("same-origin"),
    );
    if response.status() == StatusCode::OK && !path.starts_with("/assets/") {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_address_needs_a_token() {
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let err = check_listen(public, None).unwrap_err();
        assert!(err.contains("refusing to listen on 0.0.0.0:8080"), "{err}");
        assert!(err.contains("--auth-token"), "{err}");
        assert!(check_listen(public, Some("long enough token")).is_ok());
        assert!(check_listen(public, Some("short")).is_err());
        assert!(check_listen("127.0.0.1:0".parse().unwrap(), None).is_ok());
        assert!(check_listen("[::1]:0".parse().unwrap(), None).is_ok());
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:80",
            "127.3.4.5",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example:8080",
            "10.0.0.1",
            "",
            "localhost.evil.example",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn secrets_compare_by_value() {
        assert!(secrets_match("abc", "abc"));
        assert!(!secrets_match("abc", "abd"));
        assert!(!secrets_match("", "abc"));
    }
}
