//! Pieces every page uses: the page shell, status badges, durations,
//! timestamps and the truncated-text expander. All markup goes through maud,
//! which escapes every interpolated value.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::state::AppState;

/// Characters of a JSON value or error shown before the expander.
pub const SHORT_PREVIEW: usize = 120;

/// The navigation entries.
const NAV: [(&str, &str); 4] = [
    ("/runs", "Runs"),
    ("/flows", "Flows"),
    ("/workers", "Workers"),
    ("/queues", "Queues"),
];

/// What a page tells the shell.
pub struct Page<'a> {
    /// The `<title>` and heading context.
    pub title: &'a str,
    /// The nav entry to highlight (`/runs`, ...).
    pub nav: &'a str,
    /// `data-page` on `<body>`: which live behaviour app.js applies.
    pub kind: &'a str,
    /// JSON endpoint the page re-fetches on live events (`data-src`).
    pub source: Option<String>,
    /// Only events of this run refresh the page.
    pub run_filter: Option<String>,
}

/// The HTML shell: head with our CSS and JS, navigation, and `body`.
pub fn page(state: &AppState, meta: Page<'_>, body: Markup) -> Markup {
    let live_url = match &meta.run_filter {
        Some(run) => format!("/events?run={run}"),
        None => "/events".to_owned(),
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf-token" content=(state.secrets.csrf_token);
                title { (meta.title) " · pgflow" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body data-page=(meta.kind) data-src=[meta.source.as_deref()] data-live=(live_url) {
                header.top {
                    a.brand href="/runs" { "pgflow" }
                    nav {
                        @for (href, label) in NAV {
                            a href=(href) class=[(href == meta.nav).then_some("active")] { (label) }
                        }
                    }
                    span.live #live-indicator title="Live updates" { "●" }
                    @if !state.settings.allow_actions { span.readonly { "read-only" } }
                    @if state.settings.auth_token.is_some() {
                        form.logout method="post" action="/logout" {
                            (csrf_field(state))
                            button type="submit" { "log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(state: &AppState) -> Markup {
    html! { input type="hidden" name="csrf_token" value=(state.secrets.csrf_token); }
}

/// A status badge (`data-status` lets app.js recolour it).
pub fn badge(status: &str) -> Markup {
    html! { span class=(format!("badge status-{status}")) { (status) } }
}

/// Seconds as `850 ms`, `12.3 s`, `4m 05s`, `2h 10m`.
pub fn duration(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else if secs < 60.0 {
        format!("{secs:.1} s")
    } else if secs < 3600.0 {
        format!("{}m {:02}s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    } else {
        format!(
            "{}h {:02}m",
            (secs / 3600.0) as u64,
            ((secs % 3600.0) / 60.0) as u64
        )
    }
}

/// A timestamp as UTC text, with the full RFC 3339 value in `datetime`.
pub fn time(at: &DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M:%S")) } }
}

/// Long text (JSON, an error) cut to a short line; the whole preview behind
/// an expander; a link to everything when even the preview is cut.
pub fn expander(preview: Option<&str>, full_len: Option<i32>, full_href: Option<&str>) -> Markup {
    let Some(text) = preview else {
        return html! { span.muted { "—" } };
    };
    let short: String = text.chars().take(SHORT_PREVIEW).collect();
    let cut_here = short.len() < text.len();
    let cut_in_db = full_len.is_some_and(|n| n as usize > text.len());
    html! {
        @if !cut_here && !cut_in_db {
            code.value { (text) }
        } @else {
            details.expander {
                summary { code.value { (short) "…" } }
                pre { (text) }
                @if cut_in_db {
                    p.muted {
                        "showing " (text.chars().count()) " of " (full_len.unwrap_or(0)) " bytes"
                        @if let Some(href) = full_href { " · " a href=(href) { "all of it (JSON)" } }
                    }
                }
            }
        }
    }
}

/// The page for an error (escaped, like everything).
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (status.as_u16()) " · pgflow" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                header.top { a.brand href="/runs" { "pgflow" } }
                main {
                    h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                    p.error-text { (message) }
                    p { a href="/runs" { "back to runs" } }
                }
            }
        }
    }
}

/// A progress bar (`id` lets app.js update it).
pub fn progress(percent: f64) -> Markup {
    let p = percent.clamp(0.0, 100.0);
    html! {
        div.progress #run-progress role="progressbar" aria-valuenow=(format!("{p:.0}")) aria-valuemin="0" aria-valuemax="100" {
            div.fill style=(PreEscaped(format!("width:{p:.1}%"))) {}
            span.pct { (format!("{p:.0}%")) }
        }
    }
}
