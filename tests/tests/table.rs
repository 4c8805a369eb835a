//! The table itself: it covers what issues 4 and 7 ask of it, and its store check catches a
//! case that touches the store when it must not.

use keygate_conformance::driver::check_store;
use keygate_conformance::{
    base_cases, hostile_cases, table, Fixture, StoreAccess, StoreActivity, StoreCall,
};

#[tokio::test]
async fn the_table_covers_every_row_of_the_design_error_table() {
    let fixture = Fixture::new().await;
    let cases = table(&fixture.keys);
    for (status, reason) in [
        (401, "missing_credentials"),
        (401, "malformed_key"),
        (401, "invalid_key"),
        (401, "expired_key"),
        (401, "revoked_key"),
        (403, "insufficient_scope"),
        (429, "rate_limited"),
        (503, "store_unavailable"),
        (400, "invalid_json"),
        (404, "not_found"),
        (405, "method_not_allowed"),
        (409, "collection_full"),
    ] {
        assert!(
            cases
                .iter()
                .any(|c| c.expect.status == status && c.expect.reason == Some(reason)),
            "no case for {status} {reason}"
        );
    }
}

#[tokio::test]
async fn case_names_are_unique() {
    let fixture = Fixture::new().await;
    let cases = table(&fixture.keys);
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
}

#[tokio::test]
async fn there_are_at_least_sixty_hostile_cases_each_with_status_and_reason() {
    let fixture = Fixture::new().await;
    let hostile = hostile_cases(&fixture.keys);
    assert!(hostile.len() >= 60, "only {} hostile cases", hostile.len());
    for c in &hostile {
        if c.expect.status >= 400 {
            assert!(c.expect.reason.is_some(), "{}: no reason asserted", c.name);
            assert!(c.expect.code.is_some(), "{}: no code asserted", c.name);
        }
    }
    // Malformed and missing credentials must be answered without a store read.
    for c in hostile.iter().chain(base_cases(&fixture.keys).iter()) {
        if let Some(r @ ("malformed_key" | "missing_credentials")) = c.expect.reason {
            assert_eq!(
                c.expect.store,
                StoreAccess::Untouched,
                "{}: a {r} case must forbid store reads",
                c.name
            );
        }
    }
}

#[test]
fn the_store_check_flags_reads_where_none_are_allowed_and_any_write() {
    let read = StoreActivity {
        calls: vec![StoreCall::Get],
    };
    let write = StoreActivity {
        calls: vec![StoreCall::Get, StoreCall::Revoke],
    };
    let none = StoreActivity { calls: vec![] };
    assert!(check_store(StoreAccess::Untouched, &none).is_empty());
    assert!(check_store(StoreAccess::ReadOnly, &read).is_empty());
    assert_eq!(check_store(StoreAccess::Untouched, &read).len(), 1);
    assert_eq!(check_store(StoreAccess::ReadOnly, &write).len(), 1);
}

/// End to end: a case whose credential needs a store read, declared `Untouched`, fails the
/// run — so the counting store really sees what the verifier does.
#[tokio::test]
async fn a_case_that_reads_the_store_against_its_declaration_fails_the_run() {
    use keygate_conformance::{run_cases, AxumApp, Case, Expect, TestRequest};
    let fixture = Fixture::new().await;
    let app = AxumApp::quickstart(fixture.state.clone());
    let case = Case {
        name: "a valid, not yet cached key declared as needing no store work",
        request: TestRequest::get("/api/v1/me").header("x-api-key", &fixture.keys.full),
        expect: Expect::ok(200).store(StoreAccess::Untouched),
    };
    let failures = run_cases(&app, &[case], &fixture.counting).await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0]
            .problems
            .iter()
            .any(|p| p.contains("store was read")),
        "{:?}",
        failures[0].problems
    );
}
