//! Generates the gRPC stubs of `keygate.quickstart.v1.Demo` with tonic-build's manual
//! builder: the service is described here in Rust and the messages are `prost::Message`
//! derives in `src/lib.rs`, so the build needs no `protoc` and no `.proto` file. The
//! equivalent `.proto` is in the crate docs.

use tonic_build::manual::{Builder, Method, Service};

fn method(name: &str, route: &str, input: &str, output: &str) -> Method {
    Method::builder()
        .name(name)
        .route_name(route)
        .input_type(format!("crate::pb::{input}"))
        .output_type(format!("crate::pb::{output}"))
        .codec_path("tonic_prost::ProstCodec")
        .build()
}

fn main() {
    let demo = Service::builder()
        .name("Demo")
        .package("keygate.quickstart.v1")
        .comment("keygate's demo gRPC service: every call needs an API key.")
        .method(method("whoami", "Whoami", "WhoamiRequest", "WhoamiReply"))
        .method(method(
            "create_board",
            "CreateBoard",
            "CreateBoardRequest",
            "Board",
        ))
        .build();
    Builder::new().compile(&[demo]);
    println!("cargo:rerun-if-changed=build.rs");
}
