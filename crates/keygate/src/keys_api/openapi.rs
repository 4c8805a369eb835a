//! The OpenAPI 3.1 document of the Keys API, derived by `utoipa` from the handlers'
//! annotations and the very types they serialize, so it cannot drift from the code.

use bytes::Bytes;
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use super::DEFAULT_API_PATH;
use crate::record::KeyStatus;

/// keygate's error envelope.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
#[allow(dead_code)] // Rendered by `error::envelope`; this describes it.
pub(crate) struct ErrorEnvelope {
    error: ErrorBody,
    meta: ErrorMeta,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
struct ErrorBody {
    /// `BAD_REQUEST`, `UNAUTHORIZED`, `FORBIDDEN`, `NOT_FOUND`, `CONFLICT`,
    /// `SERVICE_UNAVAILABLE`, …
    code: String,
    /// For people.
    message: String,
    details: ErrorDetails,
}

/// For programs.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
struct ErrorDetails {
    /// `invalid_body`, `invalid_field`, `missing_credentials`, `invalid_key`,
    /// `insufficient_scope`, `scope_not_grantable`, `key_not_found`, `key_not_active`,
    /// `already_rotated`, `store_unavailable`, …
    reason: String,
    /// The field at fault, with `invalid_field`.
    field: Option<String>,
    /// The scopes the manager may not grant, with `scope_not_grantable`.
    scopes: Option<Vec<String>>,
}

/// About the request.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ErrorMeta {
    /// The caller's `x-request-id`, or a fresh UUID.
    request_id: String,
    /// When (RFC 3339).
    #[schema(format = DateTime)]
    timestamp: String,
}

/// The `{id}` of a key.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct KeyId {
    /// The key's public id: 16 lowercase hex digits.
    #[param(pattern = "^[0-9a-f]{16}$")]
    id: String,
}

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "keygate Keys API",
        description = "Self-service API keys: create (the plaintext is answered once), list, inspect, update, revoke, rotate and delete the keys of the caller's organization. Authenticate with a key holding `keys:manage`."
    ),
    paths(
        super::list,
        super::create,
        super::manager,
        super::show,
        super::update,
        super::delete,
        super::revoke,
        super::rotate,
        super::usage
    ),
    components(schemas(KeyStatus, ErrorEnvelope)),
    modifiers(&Security),
    security(("api_key" = []), ("bearer" = [])),
    tags((name = "keys", description = "API keys of the caller's organization"))
)]
struct KeysApiDoc;

/// The document as served for an API mounted at `api_path`.
pub(crate) fn document(api_path: &str) -> Bytes {
    let mut doc = KeysApiDoc::openapi();
    if api_path != DEFAULT_API_PATH {
        let paths = std::mem::take(&mut doc.paths.paths);
        doc.paths.paths = paths
            .into_iter()
            .map(|(p, item)| (p.replacen(DEFAULT_API_PATH, api_path, 1), item))
            .collect();
    }
    Bytes::from(doc.to_json().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn document_is_openapi_3_1_with_every_endpoint() {
        let doc: Value = serde_json::from_slice(&document(DEFAULT_API_PATH)).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths = doc["paths"].as_object().unwrap();
        for (path, methods) in [
            ("/api/v1/keys", &["get", "post"][..]),
            ("/api/v1/keys/manager", &["get"]),
            ("/api/v1/keys/{id}", &["get", "patch", "delete"]),
            ("/api/v1/keys/{id}/revoke", &["post"]),
            ("/api/v1/keys/{id}/rotate", &["post"]),
            ("/api/v1/keys/{id}/usage", &["get"]),
        ] {
            for m in methods {
                assert!(paths[path][m].is_object(), "{m} {path} missing");
            }
        }
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for s in [
            "Key",
            "CreatedKey",
            "KeyPage",
            "NewKey",
            "KeyChanges",
            "Error",
        ] {
            assert!(schemas.contains_key(s), "schema {s} missing");
        }
        assert!(schemas["Key"]["properties"].get("hash").is_none());
    }

    #[test]
    fn paths_follow_the_mount() {
        let doc: Value = serde_json::from_slice(&document("/admin/keys")).unwrap();
        assert!(doc["paths"]["/admin/keys/{id}"].is_object());
        assert!(doc["paths"].get("/api/v1/keys").is_none());
    }
}
