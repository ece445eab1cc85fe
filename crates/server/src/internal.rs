//! What an ingest node serves the query nodes of its cluster, behind `cluster.token`:
//!
//! | route | what |
//! | --- | --- |
//! | `GET /internal/v1/live?instance=&after=` | the segment list and the live batches in the format of [`oriel_store::cluster::wire`]: only those numbered above `after` when `instance` names the live buffer's numbering |

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use oriel_core::ErrorCode;
use oriel_core::secret::constant_time_eq;
use serde::Deserialize;

use crate::auth::bearer;
use crate::{ApiError, AppState};

/// The routes of an ingest node's cluster API.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/internal/v1/live", get(live))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LiveParams {
    instance: Option<u64>,
    after: Option<u64>,
}

async fn live(State(state): State<AppState>, headers: HeaderMap, Query(params): Query<LiveParams>) -> Result<Response, ApiError> {
    let allowed = match (state.cluster_token(), bearer(&headers)) {
        (Some(expected), Some(given)) => constant_time_eq(expected.as_bytes(), given.as_bytes()),
        _ => false,
    };
    if !allowed {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "this is an ingest node's cluster API: send `Authorization: Bearer <cluster.token>`",
        ));
    }
    let store = state.store().ready()?;
    let holds = params.instance.zip(params.after);
    let export = store.live_export(holds);
    let bytes = tokio::task::spawn_blocking(move || oriel_store::cluster::wire::encode(&export))
        .await
        .map_err(|_| ApiError::new(ErrorCode::Unavailable, "shutting down"))?
        .map_err(ApiError::from)?;
    Ok(([(header::CONTENT_TYPE, "application/vnd.oriel.live")], bytes).into_response())
}
