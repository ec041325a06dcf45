//! awsJson1.1 request bodies: decoded into a document (or a SerializationException), and
//! the error envelope an answer would carry rendered. Must not panic.
#![no_main]

use carapace_proto::codec::{self, Protocol};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match codec::decode(Protocol::AwsJson11, data) {
        Ok(doc) => assert!(doc.is_object(), "a decoded body is a structure"),
        Err(e) => {
            let _ = codec::error_response(Protocol::AwsJson11, Some(&carapace_model::acm::SERVICE), &e, "fuzz");
        }
    }
});
