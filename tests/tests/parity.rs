//! Issue 5: both adapters answer every case of the one table the same way — status, the
//! headers that matter and the body apart from `requestId`/`timestamp`.
//!
//! Issue 13, finding 13: parity used to send every case to axum first over one shared state,
//! so actix only met keys axum had already verified and cached. Now the first app alternates
//! per case (over one state), and the table also runs with each adapter on a fresh state of
//! its own, so both answer every key cold.

use keygate_conformance::drivers::actix_quickstart;
use keygate_conformance::{assert_parity, AxumApp, Fixture};

#[actix_web::test]
async fn axum_and_actix_answer_every_case_identically() {
    let fixture = Fixture::new().await;
    let axum = AxumApp::quickstart(fixture.state.clone());
    let actix = actix_quickstart(fixture.state.clone()).await;
    assert_parity(&axum, &actix, &fixture).await;
}

/// The roles swapped: each case goes first to the adapter that went second above (over one
/// state, whoever goes first may meet a key cold).
#[actix_web::test]
async fn actix_and_axum_answer_every_case_identically_in_the_other_order() {
    let fixture = Fixture::new().await;
    let axum = AxumApp::quickstart(fixture.state.clone());
    let actix = actix_quickstart(fixture.state.clone()).await;
    assert_parity(&actix, &axum, &fixture).await;
}

/// Each adapter over a state of its own ([`Fixture::fresh_state`]): every key of the table is
/// met cold by both, so their first answers (store read, argon2) are compared, not one's
/// first against the other's cached one.
#[actix_web::test]
async fn parity_compares_cold_answers_each_adapter_on_a_fresh_verifier() {
    let fixture = Fixture::new().await;
    let axum = AxumApp::quickstart(fixture.fresh_state().await);
    let actix = actix_quickstart(fixture.fresh_state().await).await;
    assert_parity(&axum, &actix, &fixture).await;
}

/// What the cold comparison relies on: a fresh state's verifier has not seen the keys the
/// fixture's (or another fresh state's) verifier has — its first look at one reads the store.
#[tokio::test]
async fn a_fresh_state_meets_a_key_cold_that_the_fixture_has_cached() {
    let fixture = Fixture::new().await;
    let fresh = fixture.fresh_state().await;
    let key = &fixture.keys.full;
    fixture.state.verifier.verify(key).await.unwrap();
    let mark = fixture.counting.mark();
    fixture.state.verifier.verify(key).await.unwrap();
    assert_eq!(
        fixture.counting.since(mark).reads(),
        0,
        "the fixture's verifier has the key cached"
    );
    let mark = fixture.counting.mark();
    let principal = fresh.verifier.verify(key).await.unwrap();
    assert_eq!(principal.id, fixture.keys.full_id);
    assert!(
        fixture.counting.since(mark).reads() > 0,
        "a fresh state's verifier must read the store on its first sight of a key"
    );
    // Items of its own, seeded like the fixture's.
    let names = |s: &demo_api::DemoState| -> Vec<String> {
        s.items
            .list(demo_api::Collection::Boards, "acme")
            .into_iter()
            .map(|i| i.name)
            .collect()
    };
    assert_eq!(names(&fresh), names(&fixture.state));
    assert!(!std::sync::Arc::ptr_eq(&fresh.items, &fixture.state.items));
}
