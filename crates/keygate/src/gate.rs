//! [`Gate`]: one protected route's policy — verifier, renderer, scope requirement, optional
//! or required — and the pieces every adapter shares, so adapters stay glue only.

use std::net::IpAddr;
use std::sync::Arc;

use crate::error::{
    request_id, AuthError, ErrorRenderer, ErrorResponse, JsonRenderer, RenderContext,
};
use crate::extract::extract_credential;
use crate::principal::Principal;
use crate::scope::ScopeRequirement;
use crate::verify::{PendingVerification, Started, Verifier};

/// What [`Gate::start`] found.
#[derive(Debug)]
pub enum GateCheck {
    /// Answered without awaiting: the principal (`None`: anonymous on an optional gate), or
    /// the refusal.
    Done(Result<Option<Arc<Principal>>, AuthError>),
    /// A cache missed: finish with [`PendingCheck::finish`].
    Pending(PendingCheck),
}

/// A [`Gate`] check waiting for the store or argon2; owns what it needs (`'static`, boxed).
#[derive(Debug)]
pub struct PendingCheck(Box<(Gate, PendingVerification)>);

impl PendingCheck {
    /// The gate this check runs for.
    pub fn gate(&self) -> &Gate {
        &self.0 .0
    }

    /// Finishes the check for a request from the client at `peer` (`None`: unknown).
    pub async fn finish(self, peer: Option<IpAddr>) -> Result<Option<Arc<Principal>>, AuthError> {
        let (gate, pending) = *self.0;
        let principal = gate.0.verifier.resume(pending, peer).await?;
        gate.admit(principal)
    }
}

/// Put in request extensions by every keygate authentication layer/middleware (also when an
/// optional layer let an anonymous request through), so that scope guards and extractors
/// downstream know the layer ran and render errors with the application's renderer.
///
/// Cloned into every admitted request: one shared allocation, one reference count.
#[derive(Clone)]
pub struct AuthContext(Arc<ContextParts>);

#[derive(Clone)]
struct ContextParts {
    renderer: Arc<dyn ErrorRenderer>,
    verifier: Verifier,
}

impl AuthContext {
    /// The renderer configured on the layer.
    pub fn renderer(&self) -> &Arc<dyn ErrorRenderer> {
        &self.0.renderer
    }

    /// The verifier of the layer (scope refusals downstream are counted in its usage).
    pub fn verifier(&self) -> &Verifier {
        &self.0.verifier
    }
}

impl std::fmt::Debug for AuthContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthContext")
    }
}

/// The policy of a protected route, shared by the tower layer and the adapters.
///
/// Middleware clones its gate with every request it hands on (axum clones the route's
/// service per request): the policy sits behind one reference count.
#[derive(Clone)]
#[must_use = "a gate does nothing until an adapter checks requests with it"]
pub struct Gate(Arc<Policy>);

#[derive(Clone)]
struct Policy {
    verifier: Verifier,
    context: AuthContext,
    requirement: Option<ScopeRequirement>,
    optional: bool,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("requirement", &self.0.requirement)
            .field("optional", &self.0.optional)
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// Requires a valid key, renders errors with [`JsonRenderer`].
    pub fn new(verifier: Verifier) -> Self {
        Gate(Arc::new(Policy {
            context: AuthContext(Arc::new(ContextParts {
                renderer: Arc::new(JsonRenderer::default()),
                verifier: verifier.clone(),
            })),
            verifier,
            requirement: None,
            optional: false,
        }))
    }

    /// Renders rejections with `renderer`.
    pub fn renderer(mut self, renderer: impl ErrorRenderer) -> Self {
        let policy = Arc::make_mut(&mut self.0);
        Arc::make_mut(&mut policy.context.0).renderer = Arc::new(renderer);
        self
    }

    /// Also requires scopes (403 when missing).
    pub fn require(mut self, requirement: ScopeRequirement) -> Self {
        Arc::make_mut(&mut self.0).requirement = Some(requirement);
        self
    }

    /// Lets requests without any credential through anonymously (handlers see no principal).
    /// A credential that *is* presented must still be valid. A gate that also
    /// [requires](Gate::require) scopes answers a request without a credential 401
    /// `missing_credentials`: anonymous requests hold no scope.
    pub fn optional(mut self) -> Self {
        Arc::make_mut(&mut self.0).optional = true;
        self
    }

    /// The verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.0.verifier
    }

    /// What to put in request extensions beside the principal.
    pub fn context(&self) -> &AuthContext {
        &self.0.context
    }

    /// Extracts, verifies and checks scopes. `Ok(None)`: anonymous, allowed by an optional gate.
    /// The client's address is not known (see [`Gate::check_from`]).
    ///
    /// The verification spends one request of the key's own rate limit, if it has one,
    /// *before* scopes are checked: a request refused for its scopes is traffic too, and a
    /// spent limit is answered [`AuthError::RateLimited`] whatever the route requires.
    pub async fn check<'a, A, B>(
        &self,
        api_keys: A,
        authorizations: B,
    ) -> Result<Option<Arc<Principal>>, AuthError>
    where
        A: IntoIterator<Item = &'a [u8]>,
        B: IntoIterator<Item = &'a [u8]>,
    {
        self.check_from(api_keys, authorizations, None).await
    }

    /// [`Gate::check`] for a request from the client at `peer` (the connection's remote
    /// address): wrong secrets are throttled per (key id, `peer`), see
    /// [`Verifier::verify_from`].
    pub async fn check_from<'a, A, B>(
        &self,
        api_keys: A,
        authorizations: B,
        peer: Option<IpAddr>,
    ) -> Result<Option<Arc<Principal>>, AuthError>
    where
        A: IntoIterator<Item = &'a [u8]>,
        B: IntoIterator<Item = &'a [u8]>,
    {
        match self.start_from(api_keys, authorizations, || peer) {
            GateCheck::Done(answer) => answer,
            GateCheck::Pending(pending) => pending.finish(peer).await,
        }
    }

    /// The synchronous part of [`Gate::check`]: the answer when it needs no await (a missing
    /// or malformed credential, or a key whose cache entry is fresh and holds the token's
    /// verdict), else a [`PendingCheck`] that resumes from what was found. Extraction,
    /// parsing and the cache lookup happen once per request either way.
    pub fn start<'a, A, B>(&self, api_keys: A, authorizations: B) -> GateCheck
    where
        A: IntoIterator<Item = &'a [u8]>,
        B: IntoIterator<Item = &'a [u8]>,
    {
        self.started(api_keys, authorizations, None::<fn() -> Option<IpAddr>>)
    }

    /// [`Gate::start`] for a request from the client at the address `peer` gives: a client
    /// throttled for the key's id is also answered at once (see [`Verifier::start_from`]);
    /// `peer` is called only then. Middleware that knows the client's address uses this.
    pub fn start_from<'a, A, B>(
        &self,
        api_keys: A,
        authorizations: B,
        peer: impl FnOnce() -> Option<IpAddr>,
    ) -> GateCheck
    where
        A: IntoIterator<Item = &'a [u8]>,
        B: IntoIterator<Item = &'a [u8]>,
    {
        self.started(api_keys, authorizations, Some(peer))
    }

    fn started<'a, A, B>(
        &self,
        api_keys: A,
        authorizations: B,
        peer: Option<impl FnOnce() -> Option<IpAddr>>,
    ) -> GateCheck
    where
        A: IntoIterator<Item = &'a [u8]>,
        B: IntoIterator<Item = &'a [u8]>,
    {
        let token = match extract_credential(api_keys, authorizations) {
            Ok(t) => t,
            // Anonymous is allowed only where nothing is required: a route that requires a
            // scope answers 401 to a request without a key, optional or not.
            Err(AuthError::MissingCredentials)
                if self.0.optional && self.0.requirement.is_none() =>
            {
                return GateCheck::Done(Ok(None))
            }
            Err(e) => return GateCheck::Done(Err(e)),
        };
        let started = match peer {
            Some(peer) => self.0.verifier.start_from(token, peer),
            None => self.0.verifier.start(token),
        };
        match started {
            Started::Answered(answer) => GateCheck::Done(answer.and_then(|p| self.admit(p))),
            Started::Pending(pending) => {
                GateCheck::Pending(PendingCheck(Box::new((self.clone(), pending))))
            }
        }
    }

    /// The route's scope requirement, checked on a verified principal.
    fn admit(&self, principal: Arc<Principal>) -> Result<Option<Arc<Principal>>, AuthError> {
        if let Some(req) = &self.0.requirement {
            self.0.verifier.require(&principal, req)?;
        }
        Ok(Some(principal))
    }

    /// Renders a rejection, echoing the caller's `x-request-id` when acceptable.
    pub fn render(&self, error: &AuthError, request_id_header: Option<&[u8]>) -> ErrorResponse {
        render_rejection(self.0.context.renderer().as_ref(), error, request_id_header)
    }
}

/// Renders `error` with `renderer`, echoing the caller's `x-request-id` when acceptable.
pub(crate) fn render_rejection(
    renderer: &dyn ErrorRenderer,
    error: &AuthError,
    request_id_header: Option<&[u8]>,
) -> ErrorResponse {
    let id = request_id(request_id_header);
    renderer.render(
        error,
        &RenderContext {
            request_id: &id,
            now: chrono::Utc::now(),
        },
    )
}
