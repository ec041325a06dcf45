//! Smithy RPC v2 CBOR request bodies: decoded into a document (or a SerializationException
//! in plain words), and a decoded document encoded back as Directory Service output. Must
//! not panic; error messages must not carry Rust debug text.
#![no_main]

use carapace_model::ds;
use carapace_proto::codec::{self, Protocol};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match codec::decode(Protocol::RpcV2Cbor, data) {
        Ok(doc) => {
            assert!(doc.is_object(), "a decoded body is a structure");
            if let Some(shape) = ds::SERVICE.operation("DescribeDirectories").and_then(|op| op.output) {
                let _ = carapace_model::cbor::json_to_cbor(&ds::SERVICE, shape, &doc);
            }
        }
        Err(e) => {
            assert!(!e.message.contains("Semantic(") && !e.message.contains("Syntax("), "{}", e.message);
            let _ = codec::error_response(Protocol::RpcV2Cbor, Some(&ds::SERVICE), &e, "fuzz");
        }
    }
});
