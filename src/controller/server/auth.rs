//! Who may read `/metrics`, as controller-runtime's secure metrics serving
//! decides it: the request's bearer token is reviewed by the API server
//! (TokenReview), then the user it names must be allowed to `get` the
//! non-resource URL `/metrics` (SubjectAccessReview).
//!
//! Decisions are cached per token (by its SHA-256; the token itself is
//! neither logged nor kept), so a scrape every 15 s costs no review most of
//! the time.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use sha2::{Digest, Sha256};
use tracing::{debug, warn};

/// The path and verb every reader of the metrics needs.
pub const METRICS_PATH: &str = "/metrics";
pub const METRICS_VERB: &str = "get";

/// How long a review may take before the request gets 503.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);

/// The user a token belongs to, as the API server reported it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    pub name: String,
    pub uid: Option<String>,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// A review the API server did not answer.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("TokenReview: {0}")]
    TokenReview(#[source] kube::Error),
    #[error("SubjectAccessReview: {0}")]
    AccessReview(#[source] kube::Error),
    #[error("the {0} took longer than {1:?}")]
    Timeout(&'static str, Duration),
}

/// The two questions asked of the API server; a trait so tests can answer
/// them without one.
pub trait Reviewer: Send + Sync {
    /// The token's user, or `None` when the token is not valid.
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<User>, ReviewError>>;

    /// Whether `user` may `get` the non-resource URL `/metrics`.
    fn authorize<'a>(&'a self, user: &'a User) -> BoxFuture<'a, Result<bool, ReviewError>>;
}

/// The API server behind the operator's own client.
pub struct KubeReviewer {
    client: kube::Client,
    timeout: Duration,
}

impl KubeReviewer {
    pub fn new(client: kube::Client) -> KubeReviewer {
        KubeReviewer {
            client,
            timeout: REVIEW_TIMEOUT,
        }
    }
}

impl Reviewer for KubeReviewer {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<User>, ReviewError>> {
        Box::pin(async move {
            let review = TokenReview {
                spec: TokenReviewSpec {
                    token: Some(token.to_string()),
                    ..Default::default()
                },
                ..Default::default()
            };
            let api: Api<TokenReview> = Api::all(self.client.clone());
            let reviewed =
                tokio::time::timeout(self.timeout, api.create(&PostParams::default(), &review))
                    .await
                    .map_err(|_| ReviewError::Timeout("TokenReview", self.timeout))?
                    .map_err(ReviewError::TokenReview)?;
            let status = reviewed.status.unwrap_or_default();
            if status.authenticated != Some(true) {
                if let Some(error) = status.error.filter(|e| !e.is_empty()) {
                    debug!(
                        error,
                        "metrics: the API server did not authenticate a token"
                    );
                }
                return Ok(None);
            }
            let Some(info) = status
                .user
                .filter(|u| u.username.as_deref().is_some_and(|n| !n.is_empty()))
            else {
                return Ok(None);
            };
            Ok(Some(User {
                name: info.username.unwrap_or_default(),
                uid: info.uid.filter(|u| !u.is_empty()),
                groups: info.groups.unwrap_or_default(),
                extra: info.extra.unwrap_or_default(),
            }))
        })
    }

    fn authorize<'a>(&'a self, user: &'a User) -> BoxFuture<'a, Result<bool, ReviewError>> {
        Box::pin(async move {
            let review = SubjectAccessReview {
                spec: SubjectAccessReviewSpec {
                    user: Some(user.name.clone()),
                    uid: user.uid.clone(),
                    groups: Some(user.groups.clone()),
                    extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
                    non_resource_attributes: Some(NonResourceAttributes {
                        path: Some(METRICS_PATH.into()),
                        verb: Some(METRICS_VERB.into()),
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
            let reviewed =
                tokio::time::timeout(self.timeout, api.create(&PostParams::default(), &review))
                    .await
                    .map_err(|_| ReviewError::Timeout("SubjectAccessReview", self.timeout))?
                    .map_err(ReviewError::AccessReview)?;
            let status = reviewed.status.unwrap_or_default();
            if let Some(error) = status.evaluation_error.filter(|e| !e.is_empty()) {
                debug!(user = %user.name, error, "metrics: SubjectAccessReview evaluation error");
            }
            Ok(status.allowed)
        })
    }
}

/// What a token is allowed, once reviewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed {
        user: String,
    },
    /// The API server does not know the token.
    Unauthenticated,
    /// Known, but without `get` on `/metrics`.
    Forbidden {
        user: String,
    },
}

/// Why a request gets no metrics; each becomes its response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no bearer token")]
    NoToken,
    #[error("the Authorization header is not \"Bearer <token>\"")]
    MalformedHeader,
    #[error("the token is not valid")]
    Unauthenticated,
    #[error("{user} may not get the non-resource URL /metrics")]
    Forbidden { user: String },
    #[error("the API server cannot review the request")]
    Unavailable,
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::NoToken | Refusal::MalformedHeader | Refusal::Unauthenticated => {
                StatusCode::UNAUTHORIZED
            }
            Refusal::Forbidden { .. } => StatusCode::FORBIDDEN,
            Refusal::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn body(&self) -> String {
        match self {
            Refusal::NoToken => {
                "Unauthorized: send a bearer token (Authorization: Bearer <token>)\n".into()
            }
            Refusal::MalformedHeader => {
                "Unauthorized: the Authorization header must be \"Bearer <token>\"\n".into()
            }
            Refusal::Unauthenticated => {
                "Unauthorized: the API server does not authenticate this token\n".into()
            }
            Refusal::Forbidden { user } => format!(
                "Forbidden: user \"{user}\" lacks {METRICS_VERB} on the non-resource URL \
                 {METRICS_PATH}\n"
            ),
            Refusal::Unavailable => "Service Unavailable: the Kubernetes API server cannot \
                                     review the request now; try again\n"
                .into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, self.body()).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Refusal> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(Refusal::NoToken)?
        .to_str()
        .map_err(|_| Refusal::MalformedHeader)?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or(Refusal::MalformedHeader)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || token.chars().any(char::is_whitespace)
    {
        return Err(Refusal::MalformedHeader);
    }
    Ok(token)
}

type TokenHash = [u8; 32];

fn token_hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Decisions by token hash, each until it expires; at most `capacity`.
pub struct DecisionCache {
    entries: Mutex<HashMap<TokenHash, (Decision, Instant)>>,
    allowed_for: Duration,
    refused_for: Duration,
    capacity: usize,
}

impl DecisionCache {
    /// Allowed tokens are trusted for a minute; refusals are kept shorter,
    /// so a grant just made takes effect soon.
    pub fn new() -> DecisionCache {
        DecisionCache::with_limits(Duration::from_secs(60), Duration::from_secs(10), 1024)
    }

    pub fn with_limits(
        allowed_for: Duration,
        refused_for: Duration,
        capacity: usize,
    ) -> DecisionCache {
        DecisionCache {
            entries: Mutex::new(HashMap::new()),
            allowed_for,
            refused_for,
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<TokenHash, (Decision, Instant)>> {
        self.entries.lock()
    }

    pub fn get(&self, key: &TokenHash, now: Instant) -> Option<Decision> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some((decision, until)) if *until > now => Some(decision.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn insert(&self, key: TokenHash, decision: Decision, now: Instant) {
        let ttl = match decision {
            Decision::Allowed { .. } => self.allowed_for,
            _ => self.refused_for,
        };
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= self.capacity {
                // Still full of live entries: the one expiring first goes.
                if let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, (_, until))| *until)
                    .map(|(k, _)| *k)
                {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(key, (decision, now + ttl));
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

impl Default for DecisionCache {
    fn default() -> Self {
        DecisionCache::new()
    }
}

/// Checks requests for `/metrics`.
pub struct Authorizer {
    reviewer: Arc<dyn Reviewer>,
    cache: DecisionCache,
}

impl Authorizer {
    pub fn new(reviewer: Arc<dyn Reviewer>, cache: DecisionCache) -> Authorizer {
        Authorizer { reviewer, cache }
    }

    /// The user when the request may read the metrics, else why not.
    pub async fn check(&self, headers: &HeaderMap) -> Result<String, Refusal> {
        let token = bearer_token(headers)?;
        let key = token_hash(token);
        let decision = match self.cache.get(&key, Instant::now()) {
            Some(decision) => decision,
            None => {
                let decision = self.review(token).await.map_err(|e| {
                    warn!(error = %e, "metrics: cannot review a request; answering 503");
                    Refusal::Unavailable
                })?;
                self.cache.insert(key, decision.clone(), Instant::now());
                decision
            }
        };
        match decision {
            Decision::Allowed { user } => Ok(user),
            Decision::Unauthenticated => Err(Refusal::Unauthenticated),
            Decision::Forbidden { user } => Err(Refusal::Forbidden { user }),
        }
    }

    async fn review(&self, token: &str) -> Result<Decision, ReviewError> {
        let Some(user) = self.reviewer.authenticate(token).await? else {
            debug!("metrics: refused a token the API server does not authenticate");
            return Ok(Decision::Unauthenticated);
        };
        if self.reviewer.authorize(&user).await? {
            debug!(user = %user.name, "metrics: access granted");
            Ok(Decision::Allowed { user: user.name })
        } else {
            debug!(user = %user.name, "metrics: access refused (no get on /metrics)");
            Ok(Decision::Forbidden { user: user.name })
        }
    }
}

#[cfg(test)]
pub(super) mod tests;
