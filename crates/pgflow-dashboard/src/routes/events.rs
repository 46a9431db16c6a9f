//! `GET /events[?run=<id>]`: server-sent events, one `pgflow` event per run or
//! step transition (ids and statuses only), from the process's one `LISTEN`
//! connection. Opening a stream costs no database connection and no query.
//! A client that falls behind gets a `resync` event instead of the ones it
//! missed.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures::stream::{self, Stream};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::error::JsonError;
use crate::events::LiveEvent;
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/events", get(stream_events))
}

/// Query of `/events`.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    /// Only events of this run (and `resync`).
    pub run: Option<String>,
}

fn to_sse(event: &LiveEvent) -> Event {
    Event::default()
        .event("pgflow")
        .json_data(event)
        .unwrap_or_else(|_| {
            Event::default()
                .event("pgflow")
                .data("{\"event\":\"resync\"}")
        })
}

async fn stream_events(
    State(state): State<AppState>,
    Query(query): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, JsonError> {
    let run = match super::non_empty(&query.run) {
        Some(text) => Some(super::run_id(text)?),
        None => None,
    };
    let receiver = state.events.subscribe();
    let closed = state.events.closed();
    // Held by the stream: the progress ticker checks this run while it is open.
    let guard = run.map(|run| state.events.watch(run));
    let hello = Event::default()
        .event("hello")
        .data(if state.events.is_listening() {
            "listening"
        } else {
            "connecting"
        });
    let first = stream::once(async move { Ok::<_, Infallible>(hello) });
    let rest = stream::unfold(
        (receiver, closed, guard),
        move |(mut receiver, mut closed, guard)| async move {
            loop {
                let received = tokio::select! {
                    _ = closed.wait_for(|c| *c) => return None,
                    received = receiver.recv() => received,
                };
                match received {
                    Ok(event) => {
                        if run.is_some() && event.event != "resync" && event.run_id != run {
                            continue;
                        }
                        return Some((Ok(to_sse(&event)), (receiver, closed, guard)));
                    }
                    Err(RecvError::Lagged(_)) => {
                        return Some((Ok(to_sse(&LiveEvent::resync())), (receiver, closed, guard)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    Ok(Sse::new(futures::StreamExt::chain(first, rest))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(20))))
}
