//! The services' rules: ACM's certificate lifecycles and validation, Directory Service's
//! directories and certificates, Lightsail's certificates and distributions — over the
//! [`carapace_kernel`], whose modules are re-exported here under their own names.
//!
//! The rules know neither wire formats nor SQL: handlers call them with plain Rust values,
//! and they persist through [`carapace_store::Store`].

pub mod acm;
pub mod ds;
pub mod events;
pub mod lightsail;
pub mod validation;

#[cfg(test)]
mod testing;

pub use carapace_kernel::{
    Clock, Core, ManualClock, OffsetClock, Settings, SystemClock, accounts, ca, clock, crypto, index, jobs, module,
    optimistic, retry, revocation, runtime,
};

pub use acm::AcmSettings;
