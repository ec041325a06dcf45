//! GetDistributionMetricData: aggregation of the per-minute counters edges write
//! ([`MinuteCounters`], one row per distribution, minute and edge node).
//!
//! Each minute with traffic is one sample: for `Requests`, `BytesDownloaded` and
//! `BytesUploaded` the minute's count; for the error rates the percentage of the minute's
//! requests with a 4xx/5xx status (minutes without requests have no rate sample). A
//! datapoint per `period` seconds (a multiple of 60) starting at `startTime` aggregates its
//! samples: `Sum`, `Average` (= Sum / SampleCount), `Minimum`, `Maximum`, `SampleCount`, as
//! CloudWatch computes them. Periods without samples have no datapoint.

use std::collections::BTreeMap;

use carapace_store::{Cursor, Order, Scan};

use super::records::{self, METRICS_KIND, MinuteCounters};
use super::{LightsailError, LightsailManager, Result};
use carapace_acm::Owner;
use carapace_kernel::error::chain;

/// Most datapoints one request may ask for (CloudWatch's limit).
pub const MAX_DATAPOINTS: i64 = 1_440;

/// The row id of one node's counters for one minute.
pub fn counter_id(distribution_id: &str, minute_ms: i64, node: &str) -> String {
    format!("{distribution_id}/{minute_ms:013}/{node}")
}

/// A distribution metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Viewer requests.
    Requests,
    /// Bytes sent to viewers.
    BytesDownloaded,
    /// Bytes sent on to the origin.
    BytesUploaded,
    /// Percent of requests answered 4xx or 5xx.
    TotalErrorRate,
    /// Percent answered 4xx.
    Http4xxErrorRate,
    /// Percent answered 5xx.
    Http5xxErrorRate,
}

impl Metric {
    /// The unit the metric is published in (the API reference: `None` for counts,
    /// `Percent` for rates); a request naming another unit is refused.
    pub fn unit(self) -> &'static str {
        match self {
            Self::Requests | Self::BytesDownloaded | Self::BytesUploaded => "None",
            _ => "Percent",
        }
    }

    fn sample(self, c: &MinuteCounters) -> Option<f64> {
        let rate = |n: u64| (c.requests > 0).then(|| 100.0 * n as f64 / c.requests as f64);
        match self {
            Self::Requests => Some(c.requests as f64),
            Self::BytesDownloaded => Some(c.bytes_downloaded as f64),
            Self::BytesUploaded => Some(c.bytes_uploaded as f64),
            Self::TotalErrorRate => rate(c.status_4xx + c.status_5xx),
            Self::Http4xxErrorRate => rate(c.status_4xx),
            Self::Http5xxErrorRate => rate(c.status_5xx),
        }
    }
}

/// A statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistic {
    /// Smallest sample.
    Minimum,
    /// Largest sample.
    Maximum,
    /// Sum of samples.
    Sum,
    /// Sum / SampleCount.
    Average,
    /// Number of samples.
    SampleCount,
}

/// A GetDistributionMetricData request.
#[derive(Debug, Clone)]
pub struct MetricQuery {
    /// The metric.
    pub metric: Metric,
    /// Start, Unix milliseconds (inclusive).
    pub start_ms: i64,
    /// End, Unix milliseconds (exclusive).
    pub end_ms: i64,
    /// Seconds per datapoint.
    pub period_secs: i64,
    /// The unit asked for (checked against the metric's).
    pub unit: String,
    /// The statistics to return.
    pub statistics: Vec<Statistic>,
}

/// One datapoint; only the asked-for statistics are filled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Datapoint {
    /// Start of the period, Unix milliseconds.
    pub timestamp_ms: i64,
    /// Sum.
    pub sum: Option<f64>,
    /// Average.
    pub average: Option<f64>,
    /// Minimum.
    pub minimum: Option<f64>,
    /// Maximum.
    pub maximum: Option<f64>,
    /// SampleCount.
    pub sample_count: Option<f64>,
}

fn bad(message: String, tip: &str) -> LightsailError {
    LightsailError::invalid("InvalidMetricRequest", message, tip)
}

/// Checks a query against the rules GetDistributionMetricData documents.
pub fn check(q: &MetricQuery) -> Result<()> {
    if q.period_secs % 60 != 0 || q.period_secs < 60 {
        return Err(bad(
            format!("The period must be a multiple of 60 seconds; got {}.", q.period_secs),
            "Use 60, 300, 3600 or another multiple of 60.",
        ));
    }
    if q.end_ms <= q.start_ms {
        return Err(bad(
            "The endTime must be later than the startTime.".into(),
            "Swap or correct startTime and endTime.",
        ));
    }
    let period_ms = q.period_secs * 1000;
    if (q.end_ms - q.start_ms + period_ms - 1) / period_ms > MAX_DATAPOINTS {
        return Err(bad(
            format!("The request asks for more than {MAX_DATAPOINTS} datapoints."),
            "Use a longer period or a shorter time range.",
        ));
    }
    if q.unit != q.metric.unit() {
        return Err(bad(
            format!("The unit {} is not valid for this metric; its unit is {}.", q.unit, q.metric.unit()),
            "See metricName in the GetDistributionMetricData API reference for each metric's unit.",
        ));
    }
    if q.statistics.is_empty() {
        return Err(bad(
            "At least one statistic is required.".into(),
            "Ask for Sum, Average, Minimum, Maximum or SampleCount.",
        ));
    }
    Ok(())
}

/// Aggregates per-minute counters (minute ms → summed counters) into datapoints.
pub fn aggregate(q: &MetricQuery, minutes: &BTreeMap<i64, MinuteCounters>) -> Vec<Datapoint> {
    let period_ms = q.period_secs * 1000;
    let mut periods: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for (minute, c) in minutes.range(q.start_ms..q.end_ms) {
        if let Some(v) = q.metric.sample(c) {
            let start = q.start_ms + (minute - q.start_ms) / period_ms * period_ms;
            periods.entry(start).or_default().push(v);
        }
    }
    periods
        .into_iter()
        .map(|(timestamp_ms, samples)| {
            let n = samples.len() as f64;
            let sum: f64 = samples.iter().sum();
            let has = |s| q.statistics.contains(&s);
            Datapoint {
                timestamp_ms,
                sum: has(Statistic::Sum).then_some(sum),
                average: has(Statistic::Average).then_some(sum / n),
                minimum: has(Statistic::Minimum).then(|| samples.iter().copied().fold(f64::INFINITY, f64::min)),
                maximum: has(Statistic::Maximum).then(|| samples.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
                sample_count: has(Statistic::SampleCount).then_some(n),
            }
        })
        .collect()
}

impl LightsailManager {
    /// GetDistributionMetricData.
    pub async fn distribution_metric_data(&self, owner: &Owner, name: &str, q: &MetricQuery) -> Result<Vec<Datapoint>> {
        let id = self.distribution_id(owner, name).await?;
        check(q)?;
        let prefix = format!("{id}/");
        // Rows are created at their minute: start the walk just before the first minute.
        let mut after = Some(Cursor { created_ms: q.start_ms - 1, id: "\u{7f}".into() });
        let mut minutes: BTreeMap<i64, MinuteCounters> = BTreeMap::new();
        'walk: loop {
            let rows = self
                .core
                .store
                .scan(Scan {
                    kind: METRICS_KIND,
                    scope: "",
                    id_prefix: Some(&prefix),
                    after: after.clone(),
                    order: Order::Ascending,
                    limit: 1000,
                })
                .await?;
            for row in &rows {
                if row.created_ms >= q.end_ms {
                    break 'walk;
                }
                match records::decode::<MinuteCounters>(&row.body) {
                    Ok(c) => minutes.entry(row.created_ms).or_default().add(&c),
                    Err(e) => {
                        tracing::error!(key = %row.key, error = chain(&e), "skipping unreadable metric counters")
                    }
                }
            }
            match rows.last() {
                Some(last) if rows.len() == 1000 => {
                    after = Some(Cursor { created_ms: last.created_ms, id: last.key.id.clone() })
                }
                _ => break,
            }
        }
        Ok(aggregate(q, &minutes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(metric: Metric, period: i64, stats: &[Statistic]) -> MetricQuery {
        MetricQuery {
            metric,
            start_ms: 0,
            end_ms: 600_000,
            period_secs: period,
            unit: metric.unit().into(),
            statistics: stats.to_vec(),
        }
    }

    #[test]
    fn checks_period_range_and_unit() {
        assert!(check(&q(Metric::Requests, 60, &[Statistic::Sum])).is_ok());
        assert!(check(&q(Metric::Requests, 90, &[Statistic::Sum])).is_err());
        let mut wrong_unit = q(Metric::TotalErrorRate, 60, &[Statistic::Average]);
        wrong_unit.unit = "None".into();
        assert!(check(&wrong_unit).unwrap_err().to_string().contains("Percent"));
        let mut backwards = q(Metric::Requests, 60, &[Statistic::Sum]);
        backwards.end_ms = 0;
        assert!(check(&backwards).is_err());
        let mut too_many = q(Metric::Requests, 60, &[Statistic::Sum]);
        too_many.end_ms = 1_441 * 60_000;
        assert!(check(&too_many).is_err());
    }

    #[test]
    fn aggregates_samples_per_period() {
        let c = |requests, s4, s5| MinuteCounters { requests, status_4xx: s4, status_5xx: s5, ..Default::default() };
        let minutes: BTreeMap<i64, MinuteCounters> =
            [(0, c(10, 1, 0)), (60_000, c(30, 0, 3)), (300_000, c(0, 0, 0)), (360_000, c(5, 5, 0))].into();
        let all = [Statistic::Sum, Statistic::Average, Statistic::Minimum, Statistic::Maximum, Statistic::SampleCount];
        let points = aggregate(&q(Metric::Requests, 300, &all), &minutes);
        assert_eq!(points.len(), 2);
        assert_eq!(
            points[0],
            Datapoint {
                timestamp_ms: 0,
                sum: Some(40.0),
                average: Some(20.0),
                minimum: Some(10.0),
                maximum: Some(30.0),
                sample_count: Some(2.0)
            }
        );
        assert_eq!((points[1].timestamp_ms, points[1].sum, points[1].sample_count), (300_000, Some(5.0), Some(2.0)));
        let rates = aggregate(&q(Metric::TotalErrorRate, 600, &[Statistic::Average, Statistic::Maximum]), &minutes);
        // 10%, 10%, 100%; the minute without requests has no rate.
        assert_eq!(rates.len(), 1);
        assert_eq!(rates[0].maximum, Some(100.0));
        assert_eq!(rates[0].sum, None, "only the statistics asked for");
        assert!((rates[0].average.unwrap() - 40.0).abs() < 1e-9);
    }
}
