//! The certificate lifecycle as a closed state machine.
//!
//! Every status change a certificate can go through is an [`Event`], and [`transition`] is
//! the only place that decides whether an event is allowed in a status and where it leads.
//! Code that changes a record's status calls it; the exhaustive test at the bottom pins
//! every (status, event) pair, so adding a status or an event forces a decision for each
//! pair.
//!
//! The statuses are ACM's (`CertificateStatus` in the model). `INACTIVE` exists for private
//! certificates whose CA was disabled; Carapace has no such CA, so no event leads there.
//! `EXPIRED` is also derived on read ([`Status::at`]): an issued certificate past its
//! `NotAfter` is expired whether or not anything has written that down yet.

use serde::{Deserialize, Serialize};

/// A certificate's status, as ACM reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Requested; waiting for every domain to be validated.
    PendingValidation,
    /// Signed and usable.
    Issued,
    /// Disabled (private certificates whose CA is disabled; unreachable in Carapace).
    Inactive,
    /// Past its `NotAfter`.
    Expired,
    /// Not validated within the validation window (72 hours).
    ValidationTimedOut,
    /// Revoked by its owner.
    Revoked,
    /// Validation or issuance failed for good (see the record's failure reason).
    Failed,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 7] = [
        Status::PendingValidation,
        Status::Issued,
        Status::Inactive,
        Status::Expired,
        Status::ValidationTimedOut,
        Status::Revoked,
        Status::Failed,
    ];

    /// The status as seen at `now_ms`: an issued certificate whose `not_after_ms` has
    /// passed reads as [`Status::Expired`].
    pub fn at(self, now_ms: i64, not_after_ms: Option<i64>) -> Status {
        match (self, not_after_ms) {
            (Status::Issued, Some(not_after)) if now_ms > not_after => Status::Expired,
            (status, _) => status,
        }
    }

    /// ACM's wire name, e.g. `PENDING_VALIDATION`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::PendingValidation => "PENDING_VALIDATION",
            Status::Issued => "ISSUED",
            Status::Inactive => "INACTIVE",
            Status::Expired => "EXPIRED",
            Status::ValidationTimedOut => "VALIDATION_TIMED_OUT",
            Status::Revoked => "REVOKED",
            Status::Failed => "FAILED",
        }
    }
}

/// Something that happens to a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// Every domain validated and the first leaf was signed.
    Issue,
    /// A renewal signed a new leaf for the same ARN.
    Renew,
    /// The owner imported a new certificate over an imported one (same ARN).
    Reimport,
    /// The validation window closed with a domain still unvalidated.
    TimeOut,
    /// Validation or issuance failed for good (e.g. CAA forbids the issuer).
    Fail,
    /// The certificate passed its `NotAfter`.
    Expire,
    /// The owner revoked it.
    Revoke,
}

impl Event {
    /// Every event.
    pub const ALL: [Event; 7] =
        [Event::Issue, Event::Renew, Event::Reimport, Event::TimeOut, Event::Fail, Event::Expire, Event::Revoke];
}

/// An event that is not allowed in the certificate's current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{event:?} is not allowed for a certificate in status {}", from.as_str())]
pub struct InvalidTransition {
    /// The status the certificate was in.
    pub from: Status,
    /// The event that was refused.
    pub event: Event,
}

/// The lifecycle: where `event` takes a certificate in status `from`.
///
/// - Issuance only completes a pending request; a timed-out or failed request stays so
///   (ACM: "You cannot resubmit a failed certificate request").
/// - Renewal replaces the leaf of an issued (or just-expired) certificate.
/// - Re-import replaces an imported certificate whatever its validity (ACM allows
///   re-importing an expired certificate to bring it back), but not a revoked one.
/// - Revocation applies to issued certificates only (ACM revokes exported certificates,
///   which must have been issued to be exported).
pub fn transition(from: Status, event: Event) -> Result<Status, InvalidTransition> {
    use Event as E;
    use Status as S;
    let to = match (from, event) {
        (S::PendingValidation, E::Issue) => S::Issued,
        (S::PendingValidation, E::TimeOut) => S::ValidationTimedOut,
        (S::PendingValidation, E::Fail) => S::Failed,
        (S::Issued | S::Expired, E::Renew) => S::Issued,
        (S::Issued | S::Expired | S::Inactive, E::Reimport) => S::Issued,
        (S::Issued, E::Expire) => S::Expired,
        (S::Issued, E::Revoke) => S::Revoked,
        (S::PendingValidation, E::Renew | E::Reimport | E::Expire | E::Revoke)
        | (S::Issued, E::Issue | E::TimeOut | E::Fail)
        | (S::Expired, E::Issue | E::TimeOut | E::Fail | E::Expire | E::Revoke)
        | (S::Inactive, E::Issue | E::Renew | E::TimeOut | E::Fail | E::Expire | E::Revoke)
        | (S::ValidationTimedOut | S::Revoked | S::Failed, _) => {
            return Err(InvalidTransition { from, event });
        }
    };
    Ok(to)
}

/// The validation status of one domain (`DomainStatus` in the model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DomainStatus {
    /// Not validated yet.
    PendingValidation,
    /// Ownership proven.
    Success,
    /// Validation failed.
    Failed,
}

impl DomainStatus {
    /// ACM's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DomainStatus::PendingValidation => "PENDING_VALIDATION",
            DomainStatus::Success => "SUCCESS",
            DomainStatus::Failed => "FAILED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (status, event) pair and its expected outcome. A new status or event makes
    /// this table incomplete, and the length check below fails until it is decided.
    #[test]
    fn every_transition_is_decided() {
        use Event as E;
        use Status as S;
        let allowed = [
            (S::PendingValidation, E::Issue, S::Issued),
            (S::PendingValidation, E::TimeOut, S::ValidationTimedOut),
            (S::PendingValidation, E::Fail, S::Failed),
            (S::Issued, E::Renew, S::Issued),
            (S::Expired, E::Renew, S::Issued),
            (S::Issued, E::Reimport, S::Issued),
            (S::Expired, E::Reimport, S::Issued),
            (S::Inactive, E::Reimport, S::Issued),
            (S::Issued, E::Expire, S::Expired),
            (S::Issued, E::Revoke, S::Revoked),
        ];
        let mut checked = 0;
        for from in Status::ALL {
            for event in Event::ALL {
                let expected = allowed.iter().find(|(f, e, _)| *f == from && *e == event).map(|(_, _, to)| *to);
                match (transition(from, event), expected) {
                    (Ok(to), Some(want)) => assert_eq!(to, want, "{from:?} + {event:?}"),
                    (Err(err), None) => {
                        assert_eq!(err, InvalidTransition { from, event });
                        assert!(err.to_string().contains(from.as_str()));
                    }
                    (got, want) => panic!("{from:?} + {event:?}: got {got:?}, want {want:?}"),
                }
                checked += 1;
            }
        }
        assert_eq!(checked, Status::ALL.len() * Event::ALL.len());
    }

    #[test]
    fn terminal_statuses_accept_nothing() {
        for from in [Status::ValidationTimedOut, Status::Revoked, Status::Failed] {
            for event in Event::ALL {
                assert!(transition(from, event).is_err(), "{from:?} + {event:?}");
            }
        }
    }

    #[test]
    fn issued_reads_as_expired_after_not_after() {
        assert_eq!(Status::Issued.at(1_000, Some(2_000)), Status::Issued);
        assert_eq!(Status::Issued.at(2_000, Some(2_000)), Status::Issued);
        assert_eq!(Status::Issued.at(2_001, Some(2_000)), Status::Expired);
        assert_eq!(Status::Revoked.at(9_999, Some(2_000)), Status::Revoked);
        assert_eq!(Status::PendingValidation.at(9_999, None), Status::PendingValidation);
    }

    #[test]
    fn wire_names_match_serde() {
        for s in Status::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for d in [DomainStatus::PendingValidation, DomainStatus::Success, DomainStatus::Failed] {
            assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
        }
    }
}
