//! The HTTP data API: `/v1/containers`, `/v1/containers/{id}`, `/v1/watch` (NDJSON) and
//! `/v1/plugins`. Records are redacted as the outputs redact them.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tracing::warn;

use super::view::{ContainerFilter, ViewEvent};
use super::ApiContext;
use crate::record::{redacted, ContainerRecord, Envelope, Lifecycle, Timestamp};

/// The data API's routes.
pub fn router(ctx: ApiContext) -> Router {
    Router::new()
        .route("/v1/containers", get(list))
        .route("/v1/containers/{id}", get(one))
        .route("/v1/watch", get(watch))
        .route("/v1/plugins", get(plugins))
        .with_state(ctx)
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    json(status, &serde_json::json!({ "error": message }))
}

/// The filter of a `/v1/containers` query string (`namespace=&pod=&state=`), or what is
/// wrong with it.
pub(crate) fn parse_filter(query: &str) -> Result<ContainerFilter, String> {
    const STATES: [&str; 5] = ["running", "exited", "created", "unknown", "removed"];
    let filter: ContainerFilter = serde_urlencoded::from_str(query)
        .map_err(|e| format!("bad query string: {e}; use namespace=, pod= and state="))?;
    if let Some(state) = &filter.state {
        if !STATES.contains(&state.as_str()) {
            return Err(
                "state must be one of running, exited, created, unknown, removed".to_string(),
            );
        }
    }
    Ok(filter)
}

async fn list(State(ctx): State<ApiContext>, RawQuery(query): RawQuery) -> Response {
    let filter = match parse_filter(query.as_deref().unwrap_or("")) {
        Ok(filter) => filter,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let env = ctx.env_values();
    let records: Vec<_> = ctx
        .view
        .list(&filter)
        .iter()
        .map(|r| redacted(r, env).into_owned())
        .collect();
    json(StatusCode::OK, &records)
}

async fn one(State(ctx): State<ApiContext>, Path(id): Path<String>) -> Response {
    match ctx.view.get(&id) {
        Some(r) => json(StatusCode::OK, &redacted(&r, ctx.env_values())),
        None => error(StatusCode::NOT_FOUND, "no such container"),
    }
}

async fn plugins(State(ctx): State<ApiContext>) -> Response {
    json(StatusCode::OK, &ctx.view.plugins())
}

/// One NDJSON line: the envelope of an event.
pub(super) fn line(
    ctx: &ApiContext,
    event: Lifecycle,
    time: Timestamp,
    record: &ContainerRecord,
) -> Bytes {
    let id = ctx.ids.next_id();
    let record = redacted(record, ctx.env_values());
    let envelope = Envelope {
        id: &id,
        event,
        time,
        node: &ctx.node,
        record: &record,
    };
    let mut text = serde_json::to_string(&envelope).unwrap_or_default();
    text.push('\n');
    Bytes::from(text)
}

async fn watch(State(ctx): State<ApiContext>) -> Response {
    let (snapshot, rx) = ctx.view.subscribe();
    let now = Timestamp::now();
    let first: Vec<Result<Bytes, Infallible>> = snapshot
        .iter()
        .map(|r| Ok(line(&ctx, Lifecycle::Added, now, r)))
        .collect();
    let live_ctx = ctx.clone();
    let live = futures::stream::unfold((rx, live_ctx, false), |(mut rx, ctx, done)| async move {
        if done {
            return None;
        }
        match rx.recv().await {
            Ok(ViewEvent {
                event,
                time,
                record,
            }) => {
                let l = line(&ctx, event, time, &record);
                Some((Ok(l), (rx, ctx, false)))
            }
            Err(RecvError::Lagged(missed)) => {
                warn!(message = "Watcher too slow; disconnected.", missed);
                let l = Bytes::from_static(
                    b"{\"error\":\"watcher fell behind and was disconnected; reconnect to resync\"}\n",
                );
                Some((Ok(l), (rx, ctx, true)))
            }
            Err(RecvError::Closed) => None,
        }
    });
    let stream = futures::stream::iter(first)
        .chain(live)
        .take_until(ctx.stop.clone().cancelled_owned());
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}
