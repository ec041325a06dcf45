//! Carapace's core: the rules. Certificate lifecycles, the CA, validation, jobs, the clock.
//!
//! The core knows neither wire formats nor SQL: handlers call it with plain Rust values,
//! and it persists through [`carapace_store::Store`].

pub mod accounts;
pub mod acm;
pub mod clock;
pub mod ds;
pub mod events;
pub mod index;
pub mod jobs;
pub mod lightsail;
pub mod module;
pub mod retry;
pub mod revocation;
pub mod runtime;
pub mod validation;

#[cfg(test)]
mod testing;

/// The PKI crate, under the name the core has always used for it.
pub use carapace_pki as ca;
pub use carapace_pki::crypto;

pub use acm::AcmSettings;
pub use clock::{Clock, ManualClock, OffsetClock, SystemClock};
pub use runtime::{Core, Settings};
