//! ACM's EventBridge events, delivered to the operator's webhooks.
//!
//! AWS puts ACM's events on the account's EventBridge bus; Carapace POSTs the same JSON
//! (`version`, `id`, `detail-type`, `source: aws.acm`, `account`, `time`, `region`,
//! `resources`, `detail`) to every webhook in `events.webhooks`.
//!
//! Delivery is at least once. Raising an event enqueues one [`EventJob::Deliver`] per
//! webhook, in the same store batch as the change that caused it (or, for a scheduled event,
//! before the job that raised it moves on), so an event survives a restart between being
//! raised and being delivered. A delivery succeeds when the webhook answers 2xx; otherwise
//! it is retried with backoff (1 s doubling to 15 minutes) and, after `jobs.max_failures`
//! failures, dead-lettered like every job (`carapace jobs list --dead`, `jobs revive`).
//!
//! Event ids are derived from what the event is about (certificate, issuance, kind, day), so
//! a delivery repeated after a crash carries the id of the first and a receiver can
//! de-duplicate on it.
//!
//! ## Signature
//!
//! Each request carries `X-Carapace-Timestamp` (Unix seconds at sending) and
//! `X-Carapace-Signature: sha256=<hex>`, the HMAC-SHA256 under the webhook's secret of
//! `<timestamp>.<body>`. A receiver recomputes it over the raw body, compares in constant
//! time, and refuses timestamps too far from its clock (replays).

use std::sync::Arc;
use std::time::Duration;

use carapace_checks::{WebhookClient, WebhookError};
use carapace_store::Write;
use serde::{Deserialize, Serialize};

use carapace_kernel::Core;
use carapace_kernel::jobs::{DecodeError, JobFailure, JobHandler, JobSpec, Outcome, decode_payload};

/// One webhook events are delivered to.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Names the webhook in jobs and logs (unique).
    pub name: String,
    /// `http://` or `https://` URL the events are POSTed to.
    pub url: String,
    /// The HMAC-SHA256 key of the signature header.
    pub secret: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook").field("name", &self.name).field("url", &self.url).finish_non_exhaustive()
    }
}

/// Where events go.
#[derive(Debug, Clone)]
pub struct EventSettings {
    /// The webhooks; none means events are not raised at all.
    pub webhooks: Vec<Webhook>,
    /// How long one delivery may take, milliseconds.
    pub timeout_ms: u64,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self { webhooks: Vec::new(), timeout_ms: 10_000 }
    }
}

/// ACM's event types (`detail-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailType {
    /// Daily from `DaysBeforeExpiry` before `NotAfter`.
    ApproachingExpiration,
    /// `NotAfter` passed (not for imported certificates).
    Expired,
    /// Issued, renewed, imported or re-imported.
    Available,
    /// A renewal needs the owner (validation pending) or failed.
    RenewalActionRequired,
}

impl DetailType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApproachingExpiration => "ACM Certificate Approaching Expiration",
            Self::Expired => "ACM Certificate Expired",
            Self::Available => "ACM Certificate Available",
            Self::RenewalActionRequired => "ACM Certificate Renewal Action Required",
        }
    }
}

/// One event, as EventBridge shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Stable id (UUID-shaped), derived from what the event is about.
    pub id: String,
    /// What happened.
    pub detail_type: DetailType,
    /// The account.
    pub account: String,
    /// The region.
    pub region: String,
    /// When it happened, Unix milliseconds.
    pub time_ms: i64,
    /// The certificate ARN.
    pub resource: String,
    /// The type-specific members.
    pub detail: serde_json::Value,
}

impl Event {
    /// An event whose id is derived from `identity` (the same identity, the same id).
    pub fn new(
        identity: &str,
        detail_type: DetailType,
        account: &str,
        region: &str,
        time_ms: i64,
        resource: &str,
        detail: serde_json::Value,
    ) -> Self {
        Self {
            id: derived_id(identity),
            detail_type,
            account: account.to_owned(),
            region: region.to_owned(),
            time_ms,
            resource: resource.to_owned(),
            detail,
        }
    }

    /// The EventBridge JSON document.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "version": "0",
            "id": self.id,
            "detail-type": self.detail_type.as_str(),
            "source": "aws.acm",
            "account": self.account,
            "time": rfc3339_seconds(self.time_ms),
            "region": self.region,
            "resources": [self.resource],
            "detail": self.detail,
        })
    }
}

/// `2020-09-30T06:51:08Z`: EventBridge times have whole seconds.
pub fn rfc3339_seconds(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1_000)).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&format).unwrap_or_default()
}

/// A UUID-shaped id from the SHA-256 of `identity` (version nibble 4, RFC 4122 variant).
fn derived_id(identity: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, identity.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

/// The queue writes that deliver `event` to every configured webhook (none without
/// webhooks), due at `now_ms`.
pub fn deliveries(settings: &EventSettings, event: &Event, now_ms: i64) -> Result<Vec<Write>, DecodeError> {
    let document = event.to_json();
    settings
        .webhooks
        .iter()
        .map(|w| {
            let job = EventJob::Deliver(Delivery { webhook: w.name.clone(), event: document.clone() });
            job.to_new_job(now_ms).map(Write::Enqueue)
        })
        .collect()
}

/// Every kind of event job.
#[derive(Debug, Clone, PartialEq)]
pub enum EventJob {
    /// POST one event to one webhook.
    Deliver(Delivery),
}

/// Arguments of [`EventJob::Deliver`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The webhook's name.
    pub webhook: String,
    /// The EventBridge document.
    pub event: serde_json::Value,
}

/// Stored kind of [`EventJob::Deliver`].
pub const DELIVER_KIND: &str = "event.deliver";

impl JobSpec for EventJob {
    const PREFIX: &'static str = "event.";

    fn kind(&self) -> &'static str {
        match self {
            Self::Deliver(_) => DELIVER_KIND,
        }
    }

    /// One delivery per (webhook, event id): raising the same event twice delivers once
    /// while the first delivery is queued.
    fn id(&self) -> String {
        match self {
            Self::Deliver(d) => {
                let id = d.event.get("id").and_then(serde_json::Value::as_str).unwrap_or_default();
                format!("{DELIVER_KIND}/{}/{id}", d.webhook)
            }
        }
    }

    fn payload(&self) -> serde_json::Result<Vec<u8>> {
        match self {
            Self::Deliver(d) => serde_json::to_vec(d),
        }
    }

    fn decode(kind: &str, payload: &[u8]) -> Result<Self, DecodeError> {
        match kind {
            DELIVER_KIND => decode_payload(payload).map(Self::Deliver),
            other => Err(DecodeError::UnknownKind(other.to_owned())),
        }
    }
}

/// The signature header's value for `body` sent at `timestamp` (Unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("sha256={}", hex::encode(ctx.sign().as_ref()))
}

/// Delivers events to webhooks (the `event.` jobs).
pub struct EventDeliveries {
    core: Core,
    settings: EventSettings,
    client: Arc<dyn WebhookClient>,
}

impl EventDeliveries {
    /// A delivery worker's handler, posting through `client` (the binary passes
    /// `carapace_checks::webhook::HttpsWebhooks`, which verifies HTTPS webhooks against the
    /// system roots and Carapace's own root).
    pub fn new(core: Core, settings: EventSettings, client: Arc<dyn WebhookClient>) -> Self {
        Self { core, settings, client }
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Outcome, JobFailure> {
        let settings = &self.settings;
        let Some(webhook) = settings.webhooks.iter().find(|w| w.name == delivery.webhook) else {
            tracing::warn!(webhook = %delivery.webhook, "event for a webhook no longer configured; dropped");
            return Ok(Outcome::Finished);
        };
        let body = serde_json::to_vec(&delivery.event).map_err(|e| JobFailure(e.to_string()))?;
        let timestamp = self.core.clock.now_ms().div_euclid(1_000);
        let event_id = delivery.event.get("id").and_then(serde_json::Value::as_str).unwrap_or_default();
        let headers = [
            ("content-type", String::from("application/json")),
            ("user-agent", String::from(concat!("carapace/", env!("CARGO_PKG_VERSION")))),
            ("x-carapace-event-id", event_id.to_owned()),
            ("x-carapace-timestamp", timestamp.to_string()),
            ("x-carapace-signature", signature(&webhook.secret, timestamp, &body)),
        ];
        let timeout = Duration::from_millis(settings.timeout_ms);
        let status = match self.client.post(&webhook.url, &headers, body, timeout).await {
            Err(WebhookError::TimedOut(_)) => {
                return Err(JobFailure(format!("webhook {} did not answer within {timeout:?}", webhook.name)));
            }
            Err(WebhookError::Failed(e)) => return Err(JobFailure(format!("webhook {}: {e}", webhook.name))),
            Ok(status) => status,
        };
        if (200..300).contains(&status) {
            tracing::debug!(webhook = %webhook.name, event = %event_id, "event delivered");
            Ok(Outcome::Finished)
        } else {
            Err(JobFailure(format!("webhook {} answered HTTP {status}", webhook.name)))
        }
    }
}

#[async_trait::async_trait]
impl JobHandler for EventDeliveries {
    type Job = EventJob;

    fn service(&self) -> &'static str {
        "events"
    }

    async fn run(&self, job: EventJob, _attempts: u32) -> Result<Outcome, JobFailure> {
        match &job {
            EventJob::Deliver(d) => self.deliver(d).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_have_eventbridge_shape_and_stable_ids() {
        let detail = serde_json::json!({"DaysToExpiry": 31, "CommonName": "example.com"});
        let arn = "arn:aws:acm:us-east-1:111111111111:certificate/x";
        let e = Event::new(
            "a/1/approaching/31",
            DetailType::ApproachingExpiration,
            "111111111111",
            "us-east-1",
            1_601_448_668_500,
            arn,
            detail.clone(),
        );
        let again = Event::new(
            "a/1/approaching/31",
            DetailType::ApproachingExpiration,
            "111111111111",
            "us-east-1",
            0,
            arn,
            detail,
        );
        assert_eq!(e.id, again.id);
        assert!(uuid::Uuid::parse_str(&e.id).is_ok());
        let json = e.to_json();
        assert_eq!(json["detail-type"], "ACM Certificate Approaching Expiration");
        assert_eq!(json["source"], "aws.acm");
        assert_eq!(json["version"], "0");
        assert_eq!(json["time"], "2020-09-30T06:51:08Z");
        assert_eq!(json["resources"][0], arn);
        assert_eq!(json["detail"]["DaysToExpiry"], 31);
    }

    #[test]
    fn one_delivery_per_webhook_and_signature_is_hmac_of_timestamp_and_body() {
        let settings = EventSettings {
            webhooks: vec![
                Webhook { name: "a".into(), url: "http://127.0.0.1:1/".into(), secret: "s".into() },
                Webhook { name: "b".into(), url: "http://127.0.0.1:2/".into(), secret: "t".into() },
            ],
            ..EventSettings::default()
        };
        let e = Event::new("x", DetailType::Expired, "1", "r", 0, "arn", serde_json::json!({}));
        let writes = deliveries(&settings, &e, 5).unwrap();
        let ids: Vec<_> = writes
            .iter()
            .map(|w| match w {
                Write::Enqueue(j) => j.id.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, [format!("event.deliver/a/{}", e.id), format!("event.deliver/b/{}", e.id)]);
        assert!(deliveries(&EventSettings::default(), &e, 5).unwrap().is_empty());
        // The MAC covers "<timestamp>." then the body, so a replayed body with a new
        // timestamp does not verify.
        let sig = signature("Jefe", 0, b"what do ya want for nothing?");
        assert_ne!(sig, signature("Jefe", 1, b"what do ya want for nothing?"));
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"Jefe");
        let expected = aws_lc_rs::hmac::sign(&key, b"0.what do ya want for nothing?");
        assert_eq!(sig, format!("sha256={}", hex::encode(expected.as_ref())));
    }
}
