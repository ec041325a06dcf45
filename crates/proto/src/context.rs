//! What a handler knows about the request it serves.

/// Identity and placement of one authenticated request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// Echoed as `x-amzn-RequestId`; also the `RequestId` member of DS errors.
    pub request_id: String,
    /// The 12-digit account the caller's key belongs to.
    pub account_id: String,
    /// The region from the SigV4 credential scope; resources live per account and region.
    pub region: String,
    /// The access key id that signed the request.
    pub access_key_id: String,
}

impl RequestContext {
    /// The scope string resources of this caller are stored under: `<account>/<region>`.
    pub fn scope(&self) -> String {
        format!("{}/{}", self.account_id, self.region)
    }
}
