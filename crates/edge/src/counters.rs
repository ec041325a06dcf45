//! Per-distribution counters (GetDistributionMetricData's metrics) and purge generation.

use std::sync::atomic::{AtomicU64, Ordering};

/// One reading of a distribution's counters. Cumulative when read from
/// [`Edge::counters`](crate::Edge::counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Viewer requests, all methods (`Requests`).
    pub requests: u64,
    /// Response body bytes sent to viewers (`BytesDownloaded`).
    pub bytes_downloaded: u64,
    /// Request body bytes received from viewers and sent to the origin (`BytesUploaded`).
    pub bytes_uploaded: u64,
    /// Responses with a 4xx status (for `4xxErrorRate`).
    pub status_4xx: u64,
    /// Responses with a 5xx status (for `5xxErrorRate`).
    pub status_5xx: u64,
}

impl Counters {
    /// What happened between `earlier` and this reading (a per-minute flush).
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            requests: self.requests.saturating_sub(earlier.requests),
            bytes_downloaded: self.bytes_downloaded.saturating_sub(earlier.bytes_downloaded),
            bytes_uploaded: self.bytes_uploaded.saturating_sub(earlier.bytes_uploaded),
            status_4xx: self.status_4xx.saturating_sub(earlier.status_4xx),
            status_5xx: self.status_5xx.saturating_sub(earlier.status_5xx),
        }
    }
}

/// What the edge keeps per distribution across snapshot swaps.
#[derive(Debug, Default)]
pub(crate) struct DistState {
    requests: AtomicU64,
    bytes_downloaded: AtomicU64,
    bytes_uploaded: AtomicU64,
    status_4xx: AtomicU64,
    status_5xx: AtomicU64,
    /// Bumped by a purge; part of every cache key, so a fetch that started before a purge
    /// cannot store under a key that requests after it read.
    generation: AtomicU64,
}

impl DistState {
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn downloaded(&self, n: usize) {
        self.bytes_downloaded.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn uploaded(&self, n: usize) {
        self.bytes_uploaded.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn status(&self, status: http::StatusCode) {
        if status.is_client_error() {
            self.status_4xx.fetch_add(1, Ordering::Relaxed);
        } else if status.is_server_error() {
            self.status_5xx.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn bump_generation(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn read(&self) -> Counters {
        Counters {
            requests: self.requests.load(Ordering::Relaxed),
            bytes_downloaded: self.bytes_downloaded.load(Ordering::Relaxed),
            bytes_uploaded: self.bytes_uploaded.load(Ordering::Relaxed),
            status_4xx: self.status_4xx.load(Ordering::Relaxed),
            status_5xx: self.status_5xx.load(Ordering::Relaxed),
        }
    }
}
