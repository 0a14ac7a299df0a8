//! Extractors whose rejections speak the API's error shape: `ApiJson` for bodies,
//! `ApiQuery` for query strings, `FlagKeyPath` for `{key}`, `IdPath` for `{id}`. axum's own rejections
//! answer plain text; these answer `invalid_request` and name the field at fault
//! (serde's path, e.g. `from: invalid type: string "yes", expected a boolean`).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use vexil_core::FlagKey;

use crate::api::error::ApiError;

/// A JSON body of type `T`, or `invalid_request` (`payload_too_large` past the limit).
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<ApiJson<T>, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::Invalid(
            "the body must be JSON, sent with `Content-Type: application/json`".to_owned(),
        ),
        JsonRejection::BytesRejection(bytes) if bytes.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::TooLarge
        }
        // "Failed to deserialize the JSON body into the target type: from: invalid
        // type …": serde's own words, with the field's path.
        other => ApiError::Invalid(tidy(&other.body_text())),
    }
}

/// Query parameters of type `T`, or `invalid_request` naming the parameter.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<ApiQuery<T>, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(query_rejection(&rejection)),
        }
    }
}

/// The most rows a list answers at once, whatever `limit` asks.
pub(crate) const MAX_LIMIT: u32 = 500;

/// A list's `limit` query parameter: `default` when absent, else a whole number from
/// 1 to [`MAX_LIMIT`]. Given empty (`?limit=`) it is refused like any other text that
/// is not one: the OpenAPI document's integer has no empty value.
pub(crate) fn limit_param(value: Option<&str>, default: u32) -> Result<u32, ApiError> {
    let Some(text) = value.map(str::trim) else {
        return Ok(default);
    };
    let limit = text.parse::<u32>().map_err(|_| {
        ApiError::Invalid(format!(
            "limit: {text:?} is not a whole number from 1 to {MAX_LIMIT}"
        ))
    })?;
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::Invalid(format!(
            "limit: {limit} is out of range: 1 to {MAX_LIMIT}"
        )))
    }
}

fn query_rejection(rejection: &QueryRejection) -> ApiError {
    ApiError::Invalid(tidy(&rejection.body_text()))
}

/// A `{key}` path segment that is a valid flag key (`^[a-z][a-z0-9_]{0,63}$`), or
/// `invalid_request` saying what a key looks like. Whether it is declared is the use
/// case's question (`not_found`).
pub(crate) struct FlagKeyPath(pub(crate) FlagKey);

impl<S: Send + Sync> FromRequestParts<S> for FlagKeyPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<FlagKeyPath, ApiError> {
        let Path(key) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::Invalid(tidy(&rejection.body_text())))?;
        let key =
            FlagKey::parse(&key).map_err(|error| ApiError::Invalid(format!("key: {error}")))?;
        Ok(FlagKeyPath(key))
    }
}

/// An `{id}` path segment that is a positive whole number, or `invalid_request`.
pub(crate) struct IdPath(pub(crate) i64);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<IdPath, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::Invalid(tidy(&rejection.body_text())))?;
        id.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(IdPath)
            .ok_or_else(|| ApiError::Invalid("id: expected a positive whole number".to_owned()))
    }
}

/// axum's rejection text without its generic lead-in: what is left names the field.
fn tidy(text: &str) -> String {
    const LEAD_INS: [&str; 3] = [
        "Failed to deserialize the JSON body into the target type: ",
        "Failed to deserialize query string: ",
        "Failed to parse the request body as JSON: ",
    ];
    let rest = LEAD_INS
        .iter()
        .find_map(|lead| text.strip_prefix(lead))
        .unwrap_or(text);
    rest.to_owned()
}
