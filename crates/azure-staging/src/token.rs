//! A token cache in front of any Microsoft Entra ID credential.
//!
//! Some credentials cache their tokens (client secret, workload identity), others do not: the
//! Azure CLI credential runs `az account get-access-token` on every call, and a Batch run makes
//! thousands of calls. [`CachedCredential`] keeps each scope's token until shortly before it
//! expires, and lets one caller refresh it while the others wait for that token.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::{Duration, OffsetDateTime};

/// A token is replaced this long before it expires, so no request carries one that lapses in
/// flight (Azure's SDKs use the same five minutes).
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::minutes(5);

/// Wraps a credential with a per-scope token cache; see the module docs.
pub struct CachedCredential {
    inner: Arc<dyn TokenCredential>,
    tokens: tokio::sync::Mutex<HashMap<Vec<String>, AccessToken>>,
}

impl CachedCredential {
    /// Caches the tokens `inner` hands out.
    pub fn new(inner: Arc<dyn TokenCredential>) -> Self {
        Self {
            inner,
            tokens: tokio::sync::Mutex::new(HashMap::new()),
        }
    }
}

impl fmt::Debug for CachedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the tokens themselves.
        f.debug_struct("CachedCredential").finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenCredential for CachedCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let key: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        // Held across the refresh: concurrent callers wait for the one new token.
        let mut tokens = self.tokens.lock().await;
        if let Some(t) = tokens.get(&key)
            && t.expires_on > OffsetDateTime::now_utc() + REFRESH_BEFORE_EXPIRY
        {
            return Ok(t.clone());
        }
        let token = self.inner.get_token(scopes, options).await?;
        tokens.insert(key, token.clone());
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Hands out tokens that live `lifetime`, counting the calls.
    #[derive(Debug)]
    struct Counting {
        calls: AtomicU32,
        lifetime: Duration,
    }

    #[async_trait]
    impl TokenCredential for Counting {
        async fn get_token(
            &self,
            _scopes: &[&str],
            _options: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(AccessToken::new(
                format!("token-{n}"),
                OffsetDateTime::now_utc() + self.lifetime,
            ))
        }
    }

    fn cached(lifetime: Duration) -> (Arc<Counting>, CachedCredential) {
        let inner = Arc::new(Counting {
            calls: AtomicU32::new(0),
            lifetime,
        });
        (inner.clone(), CachedCredential::new(inner))
    }

    #[tokio::test]
    async fn one_acquisition_serves_many_concurrent_calls_per_scope() {
        let (inner, c) = cached(Duration::hours(1));
        let c = Arc::new(c);
        let mut calls = Vec::new();
        for _ in 0..200 {
            let c = c.clone();
            calls.push(tokio::spawn(async move {
                c.get_token(&["scope-a"], None).await.unwrap()
            }));
        }
        for call in calls {
            assert_eq!(call.await.unwrap().token.secret(), "token-0");
        }
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
        let other = c.get_token(&["scope-b"], None).await.unwrap();
        assert_eq!(
            other.token.secret(),
            "token-1",
            "each scope has its own token"
        );
        assert!(!format!("{c:?}").contains("token-"), "Debug hides tokens");
    }

    #[tokio::test]
    async fn a_token_about_to_expire_is_replaced() {
        // Inside the refresh margin from the start: every call needs a fresh one.
        let (inner, c) = cached(Duration::minutes(4));
        c.get_token(&["s"], None).await.unwrap();
        let t = c.get_token(&["s"], None).await.unwrap();
        assert_eq!(t.token.secret(), "token-1");
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
    }
}
