//! Test handles for ACM's unit tests.

/// The kernel's test handles, indexing ACM's certificates.
pub(crate) fn test_core(dev: bool) -> (carapace_kernel::Core, carapace_kernel::ManualClock) {
    carapace_kernel::runtime::test_core(dev, carapace_kernel::module::indexers(&[crate::MODULE]))
}
