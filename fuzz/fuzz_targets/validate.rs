//! Model validation of any JSON document against any operation's input: the first two
//! bytes pick the service and operation, the rest is the document. Must not panic, and the
//! message stays bounded (at most `MAX_LISTED` violations spelled out, each value cut).
#![no_main]

use carapace_model::validate::{self, Invalid, MAX_LISTED};
use carapace_model::{acm, ds, lightsail};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [which, op, rest @ ..] = data else { return };
    let service = [&acm::SERVICE, &ds::SERVICE, &lightsail::SERVICE][usize::from(*which) % 3];
    let ops: Vec<_> = service.operations.iter().filter_map(|o| o.input).collect();
    let Some(&shape) = ops.get(usize::from(*op) % ops.len().max(1)) else { return };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(rest) else { return };
    match validate::validate(service, shape, &doc) {
        Ok(()) | Err(Invalid::Serialization(_)) => {}
        Err(Invalid::Constraints { listed, total }) => {
            assert!(listed.len() <= MAX_LISTED && listed.len() <= total && total > 0);
            for line in &listed {
                assert!(line.len() < 64 * 1024, "{} bytes", line.len());
            }
        }
    }
});
