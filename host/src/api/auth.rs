//! The bearer token of the data API's TCP listener: every request must carry
//! `Authorization: Bearer <token>`, compared in constant time; others get 401 with a
//! `WWW-Authenticate: Bearer` challenge. The unix sockets rely on file permissions instead.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use subtle::ConstantTimeEq;

/// The token requests must present. Its value never reaches a log or an error.
#[derive(Clone)]
pub struct BearerToken(Arc<str>);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

impl BearerToken {
    /// A token with this value.
    pub fn new(value: String) -> Self {
        Self(value.into())
    }

    /// True when the `Authorization` header value presents this token.
    fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(presented) = authorization.and_then(|v| v.strip_prefix(b"Bearer ")) else {
            return false;
        };
        presented.ct_eq(self.0.as_bytes()).into()
    }
}

/// `router` with every route behind `token`.
pub fn require(router: Router, token: BearerToken) -> Router {
    router.layer(axum::middleware::from_fn_with_state(token, check))
}

async fn check(State(token): State<BearerToken>, request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if token.admits(authorization) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "{\"error\":\"missing or wrong bearer token: send Authorization: Bearer <the token of api.token_file>\"}",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_only_the_exact_token() {
        let token = BearerToken::new("s3cret".into());
        assert!(token.admits(Some(b"Bearer s3cret")));
        assert!(!token.admits(Some(b"Bearer s3cre")));
        assert!(!token.admits(Some(b"Bearer s3cretX")));
        assert!(!token.admits(Some(b"bearer s3cret")));
        assert!(!token.admits(Some(b"s3cret")));
        assert!(!token.admits(None));
        assert_eq!(format!("{token:?}"), "BearerToken(..)");
    }
}
