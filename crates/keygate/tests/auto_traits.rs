//! Compile-time checks: the layer, its services and futures, the verifier and what it hands
//! out are `Send` (and `Sync` where shared), so they work on multi-threaded runtimes and in
//! `tokio::spawn`. If one of them stops being so, this file stops compiling.

use std::convert::Infallible;
use std::future::Ready;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use keygate::{
    ApiKeyFuture, ApiKeyLayer, ApiKeyService, AuthContext, Gate, GateCheck, KeyManager,
    ManagedKeys, MemoryStore, PendingCheck, PendingVerification, Principal, RequireScopesFuture,
    RequireScopesLayer, RequireScopesService, Started, Verifier, VerifierBuilder,
};
use tower_service::Service;

fn send_sync<T: Send + Sync>() {}
fn send<T: Send>() {}
fn send_value<T: Send>(_: &T) {}

/// A minimal inner service, as any tower server would wrap.
#[derive(Clone)]
struct Inner;

impl Service<Request<String>> for Inner {
    type Response = Response<Bytes>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Bytes>, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: Request<String>) -> Self::Future {
        std::future::ready(Ok(Response::new(Bytes::new())))
    }
}

#[test]
fn the_layer_its_services_and_futures_are_send_and_sync() {
    send_sync::<ApiKeyLayer>();
    send_sync::<RequireScopesLayer>();
    send_sync::<ApiKeyService<Inner>>();
    send_sync::<RequireScopesService<Inner>>();
    send::<ApiKeyFuture<Inner, String>>();
    send::<RequireScopesFuture<Ready<Result<Response<Bytes>, Infallible>>, Bytes>>();
    send::<<ApiKeyService<Inner> as Service<Request<String>>>::Future>();
    send::<<RequireScopesService<Inner> as Service<Request<String>>>::Future>();
}

#[test]
fn the_verifier_and_what_it_hands_out_are_send_and_sync() {
    send_sync::<Verifier>();
    send_sync::<VerifierBuilder>();
    send_sync::<Gate>();
    send_sync::<AuthContext>();
    send_sync::<KeyManager>();
    send_sync::<ManagedKeys>();
    send_sync::<Arc<Principal>>();
    send::<PendingVerification>();
    send::<PendingCheck>();
    send::<Started>();
    send::<GateCheck>();
}

#[tokio::test]
async fn the_verifiers_futures_are_send() {
    let verifier = Verifier::builder(Arc::new(MemoryStore::new())).build();
    send_value(&verifier.verify("mk_live_x.y"));
    send_value(&verifier.verify_from("mk_live_x.y", None));
    if let Started::Pending(pending) = verifier.start("mk_live_0123456789abcdef.x") {
        send_value(&verifier.resume(pending, None));
    }
    let gate = Gate::new(verifier.clone());
    let none: [&[u8]; 0] = [];
    send_value(&gate.check(none, none));
    if let GateCheck::Pending(pending) = gate.start([b"mk_live_x.y".as_slice()], none) {
        send_value(&pending.finish(None));
    }
    let manager = KeyManager::new(Arc::new(MemoryStore::new()));
    send_value(&manager.revoke("id"));
    send_value(&verifier.shutdown());
}
