//! The state the table runs on: a verifier over a store that fails on demand and counts
//! every call, the keys the cases use, and items seeded per organization.

use std::sync::Arc;
use std::time::Duration;

use demo_api::{Collection, DemoState, NewItem};
use keygate::{
    Argon2Hasher, Argon2Params, Clock, KeyManager, ManualClock, NewKey, RateLimit, Verifier,
};

use crate::case::{table, Case};
use crate::store::{CountingStore, FailingStore};

/// The credentials the cases present (plaintext tokens, or deliberately broken ones).
#[derive(Debug, Clone)]
pub struct Keys {
    /// Org `acme`, every demo scope.
    pub full: String,
    /// The id of [`Keys::full`].
    pub full_id: String,
    /// Org `acme`, the three read scopes only.
    pub read_only: String,
    /// Org `acme`, `boards:read` only.
    pub boards_reader: String,
    /// Org `globex`, every demo scope.
    pub other_org: String,
    /// Org `acme`, every demo scope, expired an hour ago.
    pub expired: String,
    /// Org `acme`, every demo scope, revoked.
    pub revoked: String,
    /// Org `acme`; every store read of its id fails.
    pub outage: String,
    /// The id of [`Keys::full`] with another secret (the checksum is right).
    pub wrong_secret: String,
    /// Well-formed and checksummed, never stored.
    pub unknown: String,
    /// [`Keys::full`] with its last character changed (a typo: checksum mismatch).
    pub bad_checksum: String,
    /// Well-formed, with a prefix (`qapi`) the fixture's service does not accept.
    pub wrong_prefix: String,
    /// The id of [`Keys::expired`] (to forge secrets for it).
    pub expired_id: String,
    /// The id of [`Keys::revoked`].
    pub revoked_id: String,
    /// The id of [`Keys::outage`].
    pub outage_id: String,
    /// Org `acme`, every demo scope, a rate limit of [`ROOMY_LIMIT`] that the table never
    /// comes near.
    pub limited: String,
    /// Org `acme`, `boards:read` only, a rate limit of [`SPENT_LIMIT`] whose one request the
    /// fixture spends while it is built: every use in the table is answered 429
    /// `rate_limited` (the fixture's clock never moves, so `Retry-After` is the whole day).
    pub rate_limited: String,
    /// Org `acme`, every demo scope, presented only to routes and methods that do not exist:
    /// the first time it is verified the store is read, so a case that sends it proves its
    /// route was answered without examining the credential.
    pub unrouted: String,
    /// The id of [`Keys::unrouted`] with another secret (the checksum is right); like it,
    /// presented only to routes and methods that do not exist.
    pub unrouted_wrong_secret: String,
    /// Org `initech`, every demo scope; the fixture fills initech's entities and boards to
    /// [`demo_api::MAX_ITEMS_PER_COLLECTION`] (its knowledge files stay empty).
    pub crowded: String,
}

/// The organization of [`Keys::crowded`].
pub const CROWDED_ORG: &str = "initech";

/// The collections the fixture fills to the cap for [`CROWDED_ORG`].
pub const FULL_COLLECTIONS: [Collection; 2] = [Collection::Entities, Collection::Boards];

/// Items seeded before the table runs, by organization.
pub const SEEDED: [(&str, Collection, &str); 4] = [
    ("acme", Collection::Entities, "acme-seeded-entity"),
    ("globex", Collection::Entities, "globex-seeded-entity"),
    ("acme", Collection::Boards, "acme-seeded-board"),
    ("globex", Collection::Boards, "globex-seeded-board"),
];

/// Everything the table needs. Build the application under test from [`Fixture::state`].
#[derive(Debug)]
pub struct Fixture {
    /// Verifier and items for the demo API under test.
    pub state: DemoState,
    /// The credentials of the cases.
    pub keys: Keys,
    /// Manages the fixture's keys (shares the verifier's caches).
    pub manager: KeyManager,
    /// The verifier's clock.
    pub clock: ManualClock,
    /// The store (under the counting wrapper): fails reads of [`Keys::outage`].
    pub store: Arc<FailingStore>,
    /// What the verifier and the manager see: [`Fixture::store`] behind a wrapper that
    /// records every call, so each case can check the store work it caused.
    pub counting: Arc<CountingStore>,
}

/// The fixture verifier's last-used flush interval: far longer than any test run, so the
/// write-behind flusher never writes while cases are counted (a flush is a store write).
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// `Retry-After` the fixture's verifier announces on 503 (not the default, to prove it is
/// the verifier's setting that reaches the response).
pub const RETRY_AFTER_SECS: u32 = 7;

/// The rate limit of [`Keys::rate_limited`]: one request a day, spent by the fixture.
pub const SPENT_LIMIT: &str = "1/1d";

/// The rate limit of [`Keys::limited`]: far more than the table sends.
pub const ROOMY_LIMIT: &str = "1000/1m";

impl Fixture {
    /// Builds the store, the verifier (cheap argon2 parameters, a manual clock, prefixes
    /// `mk_live`/`mk_test` accepted, last-used flushes only every [`FLUSH_INTERVAL`]), the
    /// keys and the seeded items.
    ///
    /// # Panics
    /// If the in-memory setup fails, which would be a bug in keygate itself.
    #[allow(clippy::expect_used)]
    pub async fn new() -> Fixture {
        let store = Arc::new(FailingStore::default());
        let counting = Arc::new(CountingStore::new(store.clone()));
        let clock = ManualClock::starting_now();
        let verifier = verifier_over(&counting, &clock);
        let manager = KeyManager::new(counting.clone()).with_verifier(&verifier);
        const ALL: &[&str] = &demo_api::DEMO_SCOPES;
        let create = |name: &'static str, org: &'static str, scopes: &'static [&'static str]| {
            let manager = manager.clone();
            async move {
                manager
                    .create(
                        NewKey::new(name, org)
                            .owner("conformance")
                            .scopes(scopes)
                            .expect("demo scopes are valid"),
                    )
                    .await
                    .expect("creating a key in memory works")
            }
        };
        let full = create("full", "acme", ALL).await;
        let read_only = create(
            "read-only",
            "acme",
            &["entities:read", "knowledge:read", "boards:read"],
        )
        .await;
        let boards_reader = create("boards-reader", "acme", &["boards:read"]).await;
        let other_org = create("globex-full", "globex", ALL).await;
        let expired = create("expired", "acme", ALL).await;
        manager
            .set_expiry(
                &expired.record.id,
                Some(clock.now() - chrono::Duration::hours(1)),
            )
            .await
            .expect("setting an expiry in memory works");
        let revoked = create("revoked", "acme", ALL).await;
        manager
            .revoke(&revoked.record.id)
            .await
            .expect("revoking in memory works");
        let outage = create("outage", "acme", ALL).await;
        store.fail_reads_of(&outage.record.id);
        let with_limit = |name: &'static str, scopes: &'static [&'static str], limit: &str| {
            let manager = manager.clone();
            let limit: RateLimit = limit.parse().expect("the fixture's limits parse");
            async move {
                manager
                    .create(
                        NewKey::new(name, "acme")
                            .owner("conformance")
                            .scopes(scopes)
                            .expect("demo scopes are valid")
                            .rate_limit(limit),
                    )
                    .await
                    .expect("creating a key in memory works")
            }
        };
        let limited = with_limit("limited", ALL, ROOMY_LIMIT).await;
        let rate_limited = with_limit("rate-limited", &["boards:read"], SPENT_LIMIT).await;
        let unrouted = create("unrouted", "acme", ALL).await;
        let crowded = create("crowded", CROWDED_ORG, ALL).await;
        spend_limit(&verifier, rate_limited.key.expose_secret()).await;

        let full_token = full.key.expose_secret().to_owned();
        let forge = |id: &str| {
            keygate::token::with_checksum(&format!(
                "mk_live_{id}.{}",
                "W".repeat(keygate::token::SECRET_LEN)
            ))
        };
        let wrong_secret = forge(&full.record.id);
        let mut bad_checksum = full_token.clone();
        let last = bad_checksum.pop().unwrap_or('0');
        bad_checksum.push(if last == 'x' { 'y' } else { 'x' });
        let token = |prefix: &str| {
            keygate::token::generate(prefix)
                .expect("OS randomness is available")
                .expose_secret()
                .to_owned()
        };

        let state = DemoState::new(verifier);
        seed(&state);
        let keys = Keys {
            full: full_token,
            full_id: full.record.id.clone(),
            read_only: read_only.key.expose_secret().to_owned(),
            boards_reader: boards_reader.key.expose_secret().to_owned(),
            other_org: other_org.key.expose_secret().to_owned(),
            expired: expired.key.expose_secret().to_owned(),
            revoked: revoked.key.expose_secret().to_owned(),
            outage: outage.key.expose_secret().to_owned(),
            wrong_secret,
            unknown: token("mk_live"),
            bad_checksum,
            wrong_prefix: token("qapi"),
            expired_id: expired.record.id.clone(),
            revoked_id: revoked.record.id.clone(),
            outage_id: outage.record.id.clone(),
            limited: limited.key.expose_secret().to_owned(),
            rate_limited: rate_limited.key.expose_secret().to_owned(),
            unrouted: unrouted.key.expose_secret().to_owned(),
            unrouted_wrong_secret: forge(&unrouted.record.id),
            crowded: crowded.key.expose_secret().to_owned(),
        };
        Fixture {
            state,
            keys,
            manager,
            clock,
            store,
            counting,
        }
    }

    /// The conformance table over this fixture's keys.
    pub fn cases(&self) -> Vec<Case> {
        table(&self.keys)
    }

    /// Another state for the same keys, sharing nothing cached: a new verifier over the same
    /// store and clock, with the same settings, that has seen no key yet (but
    /// [`Keys::rate_limited`], whose one request it spends as [`Fixture::new`] does), and
    /// items of its own, seeded alike. An app built over it meets every key of the table
    /// cold — its first sight of a key reads the store and runs argon2 — which is how
    /// [parity](crate::parity) compares the adapters' cold answers.
    ///
    /// The fixture's [`manager`](Fixture::manager) invalidates only
    /// [`Fixture::state`]'s verifier; the table changes no key.
    pub async fn fresh_state(&self) -> DemoState {
        let verifier = verifier_over(&self.counting, &self.clock);
        spend_limit(&verifier, &self.keys.rate_limited).await;
        let state = DemoState::new(verifier);
        seed(&state);
        state
    }
}

/// The fixture's verifier settings: cheap argon2 parameters, the manual clock, prefixes
/// `mk_live`/`mk_test` accepted, [`RETRY_AFTER_SECS`], a 30 s revocation window, last-used
/// flushes only every [`FLUSH_INTERVAL`].
#[allow(clippy::expect_used)]
fn verifier_over(counting: &Arc<CountingStore>, clock: &ManualClock) -> Verifier {
    let cheap = Argon2Hasher::with_params(Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    })
    .expect("cheap argon2 parameters are valid");
    Verifier::builder(counting.clone())
        .hasher(cheap)
        .clock(clock.clone())
        .accept_prefixes(["mk_live", "mk_test"])
        .retry_after_secs(RETRY_AFTER_SECS)
        .revocation_window(Duration::from_secs(30))
        .last_used_flush_interval(FLUSH_INTERVAL)
        .build()
}

/// Spends the one request a day of [`Keys::rate_limited`] on `verifier`.
#[allow(clippy::expect_used)]
async fn spend_limit(verifier: &Verifier, rate_limited: &str) {
    verifier
        .verify(rate_limited)
        .await
        .expect("the first request of a fresh limit is let through");
}

/// Puts the items the table expects into `state`: [`SEEDED`], and [`FULL_COLLECTIONS`] of
/// [`CROWDED_ORG`] filled to the cap.
#[allow(clippy::expect_used)]
fn seed(state: &DemoState) {
    let item = |name: &str| NewItem {
        name: name.to_owned(),
    };
    for (org, collection, name) in SEEDED {
        state
            .items
            .create(collection, org, "seed", item(name))
            .expect("the seeds stay under the cap");
    }
    for collection in FULL_COLLECTIONS {
        for n in 0..demo_api::MAX_ITEMS_PER_COLLECTION {
            state
                .items
                .create(
                    collection,
                    CROWDED_ORG,
                    "seed",
                    item(&format!("filler {n}")),
                )
                .expect("filling stops at the cap");
        }
    }
}
