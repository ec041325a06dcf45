//! The kernel every service stands on, naming none of them: the shared handles ([`Core`]),
//! the clock, accounts and access keys, the job system, the indexed store, the one
//! optimistic write loop ([`optimistic!`]), the CA's bootstrap and its revocation records,
//! and [`module::ServiceModule`], the value by which a service tells the binary what the
//! shared machinery needs of it.
//!
//! The kernel knows neither wire formats nor SQL: services call it with plain Rust values,
//! and it persists through [`carapace_store::Store`].

pub mod accounts;
pub mod clock;
pub mod error;
pub mod index;
pub mod jobs;
pub mod module;
pub mod owner;
pub mod retry;
pub mod revocation;
pub mod rows;
pub mod runtime;
pub mod stored;

/// The PKI crate, under the name the services use for it.
pub use carapace_pki as ca;
pub use carapace_pki::crypto;

pub use clock::{Clock, ManualClock, OffsetClock, SystemClock};
pub use owner::Owner;
pub use runtime::{Core, Settings};
