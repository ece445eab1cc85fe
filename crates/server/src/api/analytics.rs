//! Product analytics (`POST /api/v1/analytics/{sessions,funnel,retention,paths}`) and goals
//! (`GET /api/v1/goals`, `PUT` and `DELETE /api/v1/goals/{name}`): thin HTTP over
//! [`oriel_store::analytics`], with the goals of the configuration and of the API in one list.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::{Extension, response::IntoResponse, response::Response};
use oriel_core::config::{Config, Goal};
use oriel_core::{Clock, ErrorCode, SystemClock};
use oriel_store::analytics::goals::{GoalFile, MAX_GOALS, condition};
use oriel_store::analytics::{AnalyticsContext, funnel, paths, retention, sessions};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::{ApiError, AppState};

/// Largest analytics request.
const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// How sessions are cut and which goals exist: the configuration's and the API's.
#[derive(Debug)]
pub struct Analytics {
    context: RwLock<Arc<AnalyticsContext>>,
    /// Held while a goal is changed: two administrators' changes at once must not lose one.
    edits: Mutex<()>,
    configured: Vec<Goal>,
    file: GoalFile,
    base: AnalyticsContext,
}

impl Analytics {
    /// From the configuration and the goals file of its data directory. Fails on a goal whose
    /// conditions are not valid, naming it.
    pub fn new(config: &Config) -> oriel_store::Result<Self> {
        let file = GoalFile::new(&config.data_dir);
        let saved = file.load()?;
        for goal in config.goals.iter().chain(&saved) {
            condition(goal)?;
        }
        let base = AnalyticsContext::from_config(config, Vec::new());
        let this = Self {
            context: RwLock::new(Arc::new(base.clone())),
            edits: Mutex::new(()),
            configured: config.goals.clone(),
            file,
            base,
        };
        this.install(saved);
        Ok(this)
    }

    /// The context queries run with now.
    pub fn context(&self) -> Arc<AnalyticsContext> {
        Arc::clone(&self.context.read())
    }

    fn install(&self, saved: Vec<Goal>) {
        let goals = self.configured.iter().cloned().chain(saved).collect();
        *self.context.write() = Arc::new(AnalyticsContext { goals, ..self.base.clone() });
    }

    fn saved(&self) -> Vec<Goal> {
        self.context().goals.iter().filter(|g| !self.configured.iter().any(|c| c.name == g.name)).cloned().collect()
    }
}

async fn parse<T: DeserializeOwned>(state: &AppState, headers: &HeaderMap, body: Body) -> Result<T, ApiError> {
    let bytes = crate::body::read(headers, body, MAX_REQUEST_BYTES, state.limits().body_read_timeout).await?;
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&bytes))
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("invalid request at {}: {}", e.path(), e.inner())))
}

fn answer(value: impl Serialize) -> Result<Json<Value>, ApiError> {
    serde_json::to_value(value).map(Json).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
}

fn analytics(state: &AppState) -> Result<&Analytics, ApiError> {
    state.analytics().ok_or_else(|| ApiError::new(ErrorCode::Unavailable, "the analytics are starting; retry shortly"))
}

/// `POST /api/v1/analytics/sessions`.
pub(super) async fn sessions(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<Value>, ApiError> {
    let request: sessions::SessionsRequest = parse(&state, &headers, body).await?;
    let store = Arc::clone(state.store().ready()?);
    let context = analytics(&state)?.context();
    answer(sessions::sessions(store.engine(), &context, &request, SystemClock.now_ms()).await?)
}

/// `POST /api/v1/analytics/funnel`.
pub(super) async fn funnel(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<Value>, ApiError> {
    let request: funnel::FunnelRequest = parse(&state, &headers, body).await?;
    let store = Arc::clone(state.store().ready()?);
    let context = analytics(&state)?.context();
    answer(funnel::funnel(store.engine(), &context, &request, SystemClock.now_ms()).await?)
}

/// `POST /api/v1/analytics/retention`.
pub(super) async fn retention(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<Value>, ApiError> {
    let request: retention::RetentionRequest = parse(&state, &headers, body).await?;
    let store = Arc::clone(state.store().ready()?);
    let context = analytics(&state)?.context();
    answer(retention::retention(store.engine(), &context, &request, SystemClock.now_ms()).await?)
}

/// `POST /api/v1/analytics/paths`.
pub(super) async fn paths(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<Value>, ApiError> {
    let request: paths::PathsRequest = parse(&state, &headers, body).await?;
    let store = Arc::clone(state.store().ready()?);
    let context = analytics(&state)?.context();
    answer(paths::paths(store.engine(), &context, &request, SystemClock.now_ms()).await?)
}

/// `GET /api/v1/goals`: every goal, and whether the configuration defines it.
pub(super) async fn goals(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let analytics = analytics(&state)?;
    let goals: Vec<Value> = analytics
        .context()
        .goals
        .iter()
        .map(|g| {
            let mut v = serde_json::to_value(g).unwrap_or(Value::Null);
            v["configured"] = json!(analytics.configured.iter().any(|c| c.name == g.name));
            v
        })
        .collect();
    Ok(Json(json!({ "goals": goals })))
}

/// `PUT /api/v1/goals/{name}`: makes or replaces a goal (administrators).
pub(super) async fn put_goal(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    principal.require_admin()?;
    let mut goal: Value = parse(&state, &headers, body).await?;
    if !goal.is_object() {
        return Err(ApiError::new(ErrorCode::InvalidInput, "a goal is a JSON object such as {\"path\": \"/thanks\"}"));
    }
    goal["name"] = json!(name);
    let goal: Goal =
        serde_json::from_value(goal).map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("invalid goal: {e}")))?;
    condition(&goal)?;
    let analytics = analytics(&state)?;
    let _edit = analytics.edits.lock();
    if analytics.configured.iter().any(|c| c.name == goal.name) {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("goal {:?} is defined in the configuration file; change it there", goal.name),
        ));
    }
    let mut saved = analytics.saved();
    saved.retain(|g| g.name != goal.name);
    saved.push(goal.clone());
    if saved.len() + analytics.configured.len() > MAX_GOALS {
        return Err(ApiError::new(ErrorCode::InvalidInput, format!("at most {MAX_GOALS} goals")));
    }
    save(analytics, saved)?;
    tracing::info!(by = %principal.name, goal = %goal.name, "goal saved");
    Ok(Json(serde_json::to_value(&goal).unwrap_or(Value::Null)).into_response())
}

/// `DELETE /api/v1/goals/{name}` (administrators).
pub(super) async fn delete_goal(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    principal.require_admin()?;
    let analytics = analytics(&state)?;
    let _edit = analytics.edits.lock();
    if analytics.configured.iter().any(|c| c.name == name) {
        return Err(ApiError::new(ErrorCode::InvalidInput, format!("goal {name:?} is defined in the configuration file")));
    }
    let mut saved = analytics.saved();
    let before = saved.len();
    saved.retain(|g| g.name != name);
    if saved.len() == before {
        return Err(ApiError::new(ErrorCode::NotFound, format!("no goal {name:?}")));
    }
    save(analytics, saved)?;
    tracing::info!(by = %principal.name, goal = %name, "goal deleted");
    Ok(Json(json!({ "deleted": name })).into_response())
}

/// Writes the API's goals and puts them in force; the caller holds `edits`.
fn save(analytics: &Analytics, saved: Vec<Goal>) -> Result<(), ApiError> {
    analytics.file.save(&saved)?;
    analytics.install(saved);
    Ok(())
}
