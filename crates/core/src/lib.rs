//! Carapace's core: the rules. Certificate lifecycles, the CA, validation, jobs, the clock.
//!
//! The core knows neither wire formats nor SQL: handlers call it with plain Rust values,
//! and it persists through [`carapace_store::Store`].

pub mod accounts;
pub mod acm;
pub mod ca;
pub mod clock;
pub mod crypto;
pub mod ds;
pub mod lightsail;
pub mod revocation;
pub mod runtime;
pub mod validation;

pub use clock::{Clock, ManualClock, SystemClock};
pub use runtime::{AcmSettings, Core, Settings};
