//! The identity provider (`[oidc]`): discovery, the authorization request with PKCE,
//! `state` and `nonce`, the code exchange and the ID token's validation, all through the
//! `openidconnect` crate (no JOSE of our own), its HTTP calls made with the same `ureq`
//! client as the webhooks (no redirects followed, the system CA bundle).
//!
//! * The provider's metadata is discovered on first use (a provider down at start does
//!   not stop the service) and kept; so is its key set (JWKS).
//! * An ID token signed by a key the cached set does not hold makes the set fetched
//!   again, so a key rotation at the provider needs no restart; at most
//!   `REFETCH_BUDGET` fetches in `REFETCH_WINDOW`, so tokens with made-up key ids
//!   cannot make this service hammer the provider.
//! * Validation: signature (asymmetric algorithms only, from the provider's keys),
//!   issuer, audience (this client; another audience is refused), expiry, nonce. The
//!   person is the configured username claim; their groups the groups claim.
//!
//! The calls block: the service runs them on Tokio's blocking pool.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthPrompt, CoreClient, CoreGenderClaim, CoreIdTokenVerifier, CoreJsonWebKeySet,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreResponseType,
};
use openidconnect::{
    AdditionalClaims, AuthenticationContextClass, AuthenticationFlow, AuthorizationCode,
    ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse, IdToken,
    IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    SignatureVerificationError, SyncHttpClient,
};
use serde::{Deserialize, Serialize};

use crate::config::Oidc as OidcConfig;
use crate::model::SignIn;

/// Key-set fetches allowed for unknown key ids, per window.
const REFETCH_BUDGET: usize = 5;
const REFETCH_WINDOW: Duration = Duration::from_secs(300);
const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from the provider.
const MAX_ANSWER: u64 = 1 << 20;
/// `amr` values that show a second factor (RFC 8176).
const MFA_AMR: &[&str] = &["mfa", "otp", "hwk"];

/// The claims beyond the standard ones, so that the username and groups claims can be
/// any name.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AllClaims {
    #[serde(flatten)]
    claims: serde_json::Map<String, serde_json::Value>,
}
impl AdditionalClaims for AllClaims {}

type Token =
    IdToken<AllClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

/// A client with the endpoints discovery sets (authorization; token when the provider
/// names one).
type Client = openidconnect::Client<
    openidconnect::EmptyAdditionalClaims,
    openidconnect::core::CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJsonWebKey,
    CoreAuthPrompt,
    openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    openidconnect::core::CoreTokenResponse,
    openidconnect::core::CoreTokenIntrospectionResponse,
    openidconnect::core::CoreRevocableToken,
    openidconnect::core::CoreRevocationErrorResponse,
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The `ureq` agent as the client `openidconnect` calls.
struct Http(ureq::Agent);

#[derive(Debug)]
pub struct HttpError(String);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for HttpError {}

impl SyncHttpClient for Http {
    type Error = HttpError;

    fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let uri = request.uri().to_string();
        let resp = self
            .0
            .run(request)
            .map_err(|e| HttpError(format!("{uri}: {e}")))?;
        let (parts, mut body) = resp.into_parts();
        let bytes = body
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| HttpError(format!("{uri}: {e}")))?;
        Ok(HttpResponse::from_parts(parts, bytes))
    }
}

/// Who signed in, as the ID token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub groups: Vec<String>,
    pub sign_in: SignIn,
}

/// A browser sent to the provider: the URL, and what its callback must match.
pub struct Started {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

pub struct Provider {
    cfg: ProviderConfig,
    http: Http,
    cache: Mutex<Option<(CoreProviderMetadata, CoreJsonWebKeySet)>>,
    refetches: Mutex<VecDeque<Instant>>,
}

struct ProviderConfig {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: ClientSecret,
    redirect: RedirectUrl,
    username_claim: String,
    groups_claim: String,
    acr_values: Option<String>,
    cli_client_id: Option<ClientId>,
}

impl Provider {
    pub fn new(cfg: &OidcConfig, agent: ureq::Agent) -> Result<Provider, String> {
        let issuer = IssuerUrl::new(cfg.issuer.clone())
            .map_err(|e| format!("oidc.issuer {:?}: {e}", cfg.issuer))?;
        let redirect = RedirectUrl::new(cfg.redirect_url.clone())
            .map_err(|e| format!("oidc.redirect_url {:?}: {e}", cfg.redirect_url))?;
        let secret = String::from_utf8(cfg.client_secret.to_vec())
            .map_err(|_| "the OIDC client secret is not UTF-8".to_string())?;
        Ok(Provider {
            cfg: ProviderConfig {
                issuer,
                client_id: ClientId::new(cfg.client_id.clone()),
                client_secret: ClientSecret::new(secret),
                redirect,
                username_claim: cfg.username_claim.clone(),
                groups_claim: cfg.groups_claim.clone(),
                acr_values: cfg.acr_values.clone(),
                cli_client_id: cfg.cli_client_id.clone().map(ClientId::new),
            },
            http: Http(agent),
            cache: Mutex::new(None),
            refetches: Mutex::new(VecDeque::new()),
        })
    }

    /// The provider's metadata and keys, discovered on first use.
    fn metadata(&self) -> Result<(CoreProviderMetadata, CoreJsonWebKeySet), String> {
        if let Some(c) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            return Ok(c.clone());
        }
        let meta = CoreProviderMetadata::discover(&self.cfg.issuer, &self.http).map_err(|e| {
            format!(
                "cannot discover the identity provider {}: {}",
                self.cfg.issuer.as_str(),
                chain(&e)
            )
        })?;
        let jwks = meta.jwks().clone();
        let got = (meta, jwks);
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some(got.clone());
        Ok(got)
    }

    /// Fetch the key set again, within the budget; false when over it.
    fn refetch_keys(
        &self,
        meta: &CoreProviderMetadata,
    ) -> Result<Option<CoreJsonWebKeySet>, String> {
        {
            let mut r = self.refetches.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            while r
                .front()
                .is_some_and(|t| now.duration_since(*t) > REFETCH_WINDOW)
            {
                r.pop_front();
            }
            if r.len() >= REFETCH_BUDGET {
                return Ok(None);
            }
            r.push_back(now);
        }
        let jwks = CoreJsonWebKeySet::fetch(meta.jwks_uri(), &self.http).map_err(|e| {
            format!(
                "cannot fetch the identity provider's keys {}: {}",
                meta.jwks_uri().as_str(),
                chain(&e)
            )
        })?;
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((meta.clone(), jwks.clone()));
        Ok(Some(jwks))
    }

    fn client(&self, meta: CoreProviderMetadata) -> Client {
        CoreClient::from_provider_metadata(
            meta,
            self.cfg.client_id.clone(),
            Some(self.cfg.client_secret.clone()),
        )
        .set_redirect_uri(self.cfg.redirect.clone())
    }

    /// The provider's authorization URL for a new sign-in; with `step_up`, asking for a
    /// fresh login (`prompt=login`) and the configured `acr_values`.
    pub fn start(&self, step_up: bool) -> Result<Started, String> {
        let (meta, _) = self.metadata()?;
        let client = self.client(meta);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge);
        if step_up {
            req = req.add_prompt(CoreAuthPrompt::Login);
            if let Some(acr) = &self.cfg.acr_values {
                req = req.add_auth_context_value(AuthenticationContextClass::new(acr.clone()));
            }
        }
        let (url, state, nonce) = req.url();
        Ok(Started {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchange the callback's `code` (PKCE `verifier`) and validate the ID token
    /// against `nonce`: who signed in.
    pub fn finish(&self, code: &str, verifier: &str, nonce: &str) -> Result<Person, String> {
        let (meta, jwks) = self.metadata()?;
        let client = self.client(meta.clone());
        let resp = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| format!("the identity provider has no token endpoint: {e}"))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
            .request(&self.http)
            .map_err(|e| format!("the identity provider refused the code: {}", chain(&e)))?;
        use openidconnect::TokenResponse;
        let raw = resp
            .id_token()
            .ok_or("the identity provider returned no ID token")?
            .to_string();
        let nonce = Nonce::new(nonce.to_string());
        self.validate(&raw, &self.cfg.client_id, &nonce, &meta, jwks)
    }

    /// The issuer and the public client `jitsudoctl login` signs in with, if any.
    pub fn cli_client(&self) -> Option<(String, String)> {
        let c = self.cfg.cli_client_id.as_ref()?;
        Some((self.cfg.issuer.as_str().to_string(), c.as_str().to_string()))
    }

    /// An ID token `jitsudoctl login` got for the CLI client (device authorization
    /// grant, RFC 8628: no nonce), as an API bearer token: who it names.
    pub fn validate_cli(&self, raw: &str) -> Result<Person, String> {
        let client = self.cfg.cli_client_id.as_ref().ok_or(
            "this service takes no ID tokens from jitsudoctl login ([oidc] cli_client_id)",
        )?;
        let (meta, jwks) = self.metadata()?;
        // The device grant's ID token carries no nonce; one that does is not refused.
        self.validate(raw, client, |_: Option<&Nonce>| Ok(()), &meta, jwks)
    }

    /// Validate an ID token (as `finish` does after the exchange).
    fn validate<N: openidconnect::NonceVerifier + Copy>(
        &self,
        raw: &str,
        audience: &ClientId,
        nonce: N,
        meta: &CoreProviderMetadata,
        jwks: CoreJsonWebKeySet,
    ) -> Result<Person, String> {
        let token: Token = raw
            .parse()
            .map_err(|e| format!("the ID token is malformed: {e}"))?;
        let verify = |keys: CoreJsonWebKeySet| {
            let v = CoreIdTokenVerifier::new_public_client(
                audience.clone(),
                self.cfg.issuer.clone(),
                keys,
            );
            token.claims(&v, nonce).cloned()
        };
        let claims = match verify(jwks) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => match self.refetch_keys(meta)? {
                Some(keys) => verify(keys),
                None => {
                    tracing::warn!("ID token signed by an unknown key; key refetch budget spent");
                    Err(ClaimsVerificationError::SignatureVerification(
                        SignatureVerificationError::NoMatchingKey,
                    ))
                }
            },
            other => other,
        }
        .map_err(|e| format!("the ID token is not valid: {}", chain(&e)))?;
        // Every claim by name, the standard ones (which the crate parses apart) too.
        let all = match serde_json::to_value(&claims) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => return Err("the ID token's claims cannot be read".into()),
        };
        let name = all
            .get(&self.cfg.username_claim)
            .and_then(|v| v.as_str())
            .filter(|n| valid_name(n))
            .ok_or_else(|| {
                format!(
                    "the ID token has no usable {:?} claim (1-64 letters, digits, '.', '_', '-', '@')",
                    self.cfg.username_claim
                )
            })?
            .to_string();
        let groups = match all.get(&self.cfg.groups_claim) {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|g| g.as_str())
                .filter(|g| valid_name(g))
                .map(str::to_string)
                .collect(),
            Some(_) => {
                return Err(format!(
                    "the ID token's {:?} claim is not a list of names",
                    self.cfg.groups_claim
                ))
            }
        };
        let amr: Vec<String> = claims
            .auth_method_refs()
            .map(|a| a.iter().map(|m| m.as_str().to_string()).collect())
            .unwrap_or_default();
        let acr = claims.auth_context_ref().map(|a| a.as_str().to_string());
        let mfa = amr.iter().any(|m| MFA_AMR.contains(&m.as_str()))
            || matches!((&acr, &self.cfg.acr_values), (Some(a), Some(want)) if a == want);
        Ok(Person {
            name,
            groups,
            sign_in: SignIn {
                issuer: claims.issuer().as_str().to_string(),
                subject: claims.subject().as_str().to_string(),
                amr,
                acr,
                mfa,
            },
        })
    }
}

/// A person or group name as policies name them.
fn valid_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
}

/// An error and its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The HTTP agent for the provider: as the webhooks' (system CA bundle, no redirects).
pub fn agent(roots: ureq::tls::RootCerts) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .max_redirects(0)
        .user_agent(concat!("jitsudod/", env!("CARGO_PKG_VERSION")))
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
        .build()
        .new_agent()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain() {
        assert!(valid_name("bob.smith@example.com"));
        assert!(!valid_name("bob smith"));
        assert!(!valid_name(""));
        assert!(!valid_name(&"a".repeat(65)));
    }
}
