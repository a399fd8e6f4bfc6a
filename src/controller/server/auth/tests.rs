use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// Tokens: "reader" may read, "stranger" may not, "down" cannot be
/// reviewed; anything else is unknown. Counts the reviews.
#[derive(Default)]
pub struct FakeReviewer {
    pub authentications: AtomicUsize,
    pub authorizations: AtomicUsize,
}

impl Reviewer for FakeReviewer {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<User>, ReviewError>> {
        self.authentications.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            match token {
                "reader" | "stranger" => Ok(Some(User {
                    name: format!("system:serviceaccount:monitoring:{token}"),
                    groups: vec!["system:serviceaccounts".into()],
                    ..Default::default()
                })),
                "down" => Err(ReviewError::Timeout("TokenReview", Duration::from_secs(1))),
                _ => Ok(None),
            }
        })
    }

    fn authorize<'a>(&'a self, user: &'a User) -> BoxFuture<'a, Result<bool, ReviewError>> {
        self.authorizations.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(user.name.ends_with(":reader")) })
    }
}

fn headers(authorization: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(authorization).unwrap(),
    );
    h
}

#[test]
fn the_bearer_token_is_taken_from_the_authorization_header() {
    assert_eq!(bearer_token(&headers("Bearer abc.def")), Ok("abc.def"));
    assert_eq!(bearer_token(&headers("bearer  abc ")), Ok("abc"));
    assert_eq!(bearer_token(&HeaderMap::new()), Err(Refusal::NoToken));
    for bad in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "abc",
    ] {
        assert_eq!(
            bearer_token(&headers(bad)),
            Err(Refusal::MalformedHeader),
            "{bad}"
        );
    }
}

#[test]
fn refusals_map_to_401_403_and_503_with_a_short_reason() {
    assert_eq!(Refusal::NoToken.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(Refusal::Unauthenticated.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        Refusal::Unavailable.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let forbidden = Refusal::Forbidden {
        user: "system:serviceaccount:ns:sa".into(),
    };
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let body = forbidden.body();
    assert!(body.contains("system:serviceaccount:ns:sa"), "{body}");
    assert!(
        body.contains("get on the non-resource URL /metrics"),
        "{body}"
    );
    let response = Refusal::NoToken.into_response();
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
}

#[test]
fn cached_decisions_expire_allowed_after_a_minute_refused_sooner() {
    let cache = DecisionCache::new();
    let now = Instant::now();
    let allowed = token_hash("reader");
    let refused = token_hash("stranger");
    cache.insert(allowed, Decision::Allowed { user: "r".into() }, now);
    cache.insert(refused, Decision::Forbidden { user: "s".into() }, now);
    let later = now + Duration::from_secs(30);
    assert_eq!(
        cache.get(&allowed, later),
        Some(Decision::Allowed { user: "r".into() })
    );
    assert_eq!(cache.get(&refused, later), None);
    assert_eq!(cache.get(&allowed, now + Duration::from_secs(61)), None);
    assert_eq!(cache.len(), 0, "expired entries are dropped when seen");
}

#[test]
fn the_cache_is_bounded_and_evicts_the_entry_expiring_first() {
    let cache = DecisionCache::with_limits(Duration::from_secs(60), Duration::from_secs(60), 3);
    let now = Instant::now();
    for (i, token) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        let at = now + Duration::from_secs(i as u64);
        cache.insert(token_hash(token), Decision::Unauthenticated, at);
        assert!(cache.len() <= 3);
    }
    let at = now + Duration::from_secs(5);
    assert_eq!(cache.get(&token_hash("a"), at), None);
    assert_eq!(cache.get(&token_hash("b"), at), None);
    assert_eq!(
        cache.get(&token_hash("e"), at),
        Some(Decision::Unauthenticated)
    );
}

#[test]
fn the_cache_key_is_a_hash_not_the_token() {
    let key = token_hash("secret-token");
    assert_eq!(key.len(), 32);
    assert_ne!(&key[..12], b"secret-token");
    assert_eq!(key, token_hash("secret-token"));
    assert_ne!(key, token_hash("secret-token2"));
}

#[tokio::test]
async fn a_reader_is_allowed_and_repeated_scrapes_cost_no_review() {
    let reviewer = Arc::new(FakeReviewer::default());
    let auth = Authorizer::new(reviewer.clone(), DecisionCache::new());
    for _ in 0..4 {
        assert_eq!(
            auth.check(&headers("Bearer reader")).await,
            Ok("system:serviceaccount:monitoring:reader".into())
        );
    }
    assert_eq!(reviewer.authentications.load(Ordering::SeqCst), 1);
    assert_eq!(reviewer.authorizations.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unknown_tokens_get_401_users_without_the_grant_403() {
    let reviewer = Arc::new(FakeReviewer::default());
    let auth = Authorizer::new(reviewer.clone(), DecisionCache::new());
    assert_eq!(
        auth.check(&headers("Bearer forged")).await,
        Err(Refusal::Unauthenticated)
    );
    assert_eq!(
        reviewer.authorizations.load(Ordering::SeqCst),
        0,
        "no SubjectAccessReview for an unauthenticated token"
    );
    assert_eq!(
        auth.check(&headers("Bearer stranger")).await,
        Err(Refusal::Forbidden {
            user: "system:serviceaccount:monitoring:stranger".into()
        })
    );
    assert_eq!(auth.check(&HeaderMap::new()).await, Err(Refusal::NoToken));
    assert_eq!(
        reviewer.authentications.load(Ordering::SeqCst),
        2,
        "a request without a token costs no review"
    );
}

#[tokio::test]
async fn an_unreachable_api_server_gives_503_and_is_not_cached() {
    let reviewer = Arc::new(FakeReviewer::default());
    let auth = Authorizer::new(reviewer.clone(), DecisionCache::new());
    for _ in 0..2 {
        assert_eq!(
            auth.check(&headers("Bearer down")).await,
            Err(Refusal::Unavailable)
        );
    }
    assert_eq!(reviewer.authentications.load(Ordering::SeqCst), 2);
    assert!(auth.cache.is_empty());
}
