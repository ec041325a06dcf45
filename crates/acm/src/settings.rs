//! ACM's settings: quotas, validity and renewal, validation timing and the mail relay.
//! Filled by the binary from its configuration ([`carapace_kernel::Settings::acm`]).

/// ACM quotas and behaviour.
#[derive(Debug, Clone)]
pub struct AcmSettings {
    /// Domain names allowed on one certificate.
    pub domains_per_certificate: u32,
    /// Certificates one account may hold in one region.
    pub certificates_per_account: u32,
    /// Certificates one account may request in one region in a rolling 365 days.
    pub certificates_per_year: u32,
    /// Validity of issued certificates, days (ACM: 198 since 15 March 2026).
    pub validity_days: u32,
    /// Managed renewal starts this many days before `NotAfter` (ACM: about 45).
    pub renewal_days_before_expiry: u32,
    /// Auto-approve delay in `--dev`, milliseconds.
    pub dev_auto_approve_ms: u64,
    /// Enforce per-operation request rates.
    pub throttling: bool,
    /// Name servers validation lookups ask (UDP, then TCP); empty = the system resolvers.
    pub name_servers: Vec<std::net::SocketAddr>,
    /// Timeout of one DNS query, milliseconds.
    pub dns_timeout_ms: u64,
    /// Port HTTP validation connects to for `http://` URLs that name none (ACM: 80).
    pub http_validation_port: u16,
    /// The issuer domain CAA records must name for Carapace to issue (RFC 8659 `issue`).
    pub issuer_domain: String,
    /// First delay between validation checks, milliseconds; doubles per check.
    pub validation_retry_min_ms: u64,
    /// Longest delay between validation checks, milliseconds.
    pub validation_retry_max_ms: u64,
    /// How long a request may stay pending before `VALIDATION_TIMED_OUT`, milliseconds
    /// (ACM: 72 hours).
    pub validation_window_ms: i64,
    /// The SMTP relay approval mail goes through.
    pub smtp: crate::ownership::SmtpSettings,
    /// Base URL of the approval page links in validation mail point to.
    pub approval_base_url: String,
    /// Where ACM's events (certificate approaching expiry, renewal, ...) are delivered.
    pub events: crate::events::EventSettings,
}

impl Default for AcmSettings {
    fn default() -> Self {
        Self {
            domains_per_certificate: 10,
            certificates_per_account: 2_500,
            certificates_per_year: 12_500,
            validity_days: 198,
            renewal_days_before_expiry: 45,
            dev_auto_approve_ms: 500,
            throttling: false,
            name_servers: Vec::new(),
            dns_timeout_ms: 5_000,
            http_validation_port: 80,
            issuer_domain: String::from("carapace.internal"),
            validation_retry_min_ms: 2_000,
            validation_retry_max_ms: 300_000,
            validation_window_ms: 72 * 3_600_000,
            smtp: crate::ownership::SmtpSettings::default(),
            approval_base_url: String::from("https://127.0.0.1:4567"),
            events: crate::events::EventSettings::default(),
        }
    }
}
