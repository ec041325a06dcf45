//! SigV4 presigned URLs: the `X-Amz-*` query parameters parsed and verified (the canonical
//! query re-encoded). Neither may panic, whatever the query.
#![no_main]

use carapace_proto::sigv4;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut target = b"/?".to_vec();
    target.extend_from_slice(data);
    let Ok(uri) = http::Uri::try_from(target) else { return };
    let Ok(request) =
        http::Request::builder().method("GET").uri(uri).header("host", "acm.us-east-1.amazonaws.com").body(())
    else {
        return;
    };
    let (parts, ()) = request.into_parts();
    match sigv4::parse(&parts) {
        Ok(info) => {
            let now = time::macros::datetime!(2015-08-30 12:36:00 UTC);
            let secret = sigv4::SecretKey::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned());
            let _ = sigv4::verify(&info, &parts, &sigv4::sha256_hex(b""), &secret, "acm", now).map_err(|e| e.message());
        }
        Err(e) => {
            let _ = e.message();
        }
    }
});
