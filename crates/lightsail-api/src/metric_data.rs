//! GetDistributionMetricData.

use carapace_lightsail::metrics::{Metric, MetricQuery, Statistic};
use carapace_lightsail::{LightsailError, LightsailManager};
use carapace_model::lightsail as m;
use carapace_proto::RequestContext;

use crate::convert;
use crate::error::Result;

fn metric(name: m::DistributionMetricName) -> Result<Metric> {
    Ok(match name {
        m::DistributionMetricName::Requests => Metric::Requests,
        m::DistributionMetricName::BytesDownloaded => Metric::BytesDownloaded,
        m::DistributionMetricName::BytesUploaded => Metric::BytesUploaded,
        m::DistributionMetricName::TotalErrorRate => Metric::TotalErrorRate,
        m::DistributionMetricName::Http4xxErrorRate => Metric::Http4xxErrorRate,
        m::DistributionMetricName::Http5xxErrorRate => Metric::Http5xxErrorRate,
        other @ (m::DistributionMetricName::WafAllowedRequests | m::DistributionMetricName::WafBlockedRequests) => {
            return Err(LightsailError::unsupported(
                &format!("metricName {}", other.as_str()),
                "the Carapace edge has no web application firewall",
            )
            .into());
        }
    })
}

fn statistic(s: m::MetricStatistic) -> Statistic {
    match s {
        m::MetricStatistic::Minimum => Statistic::Minimum,
        m::MetricStatistic::Maximum => Statistic::Maximum,
        m::MetricStatistic::Sum => Statistic::Sum,
        m::MetricStatistic::Average => Statistic::Average,
        m::MetricStatistic::SampleCount => Statistic::SampleCount,
    }
}

pub(crate) async fn handle(
    m: &LightsailManager,
    ctx: &RequestContext,
    req: m::GetDistributionMetricDataRequest,
) -> Result<m::GetDistributionMetricDataResult> {
    let q = MetricQuery {
        metric: metric(req.metric_name)?,
        start_ms: convert::ms(&req.start_time),
        end_ms: convert::ms(&req.end_time),
        period_secs: i64::from(req.period),
        unit: req.unit.as_str().to_owned(),
        statistics: req.statistics.into_iter().map(statistic).collect(),
    };
    let points = m.distribution_metric_data(&crate::owner(ctx), &req.distribution_name, &q).await?;
    Ok(m::GetDistributionMetricDataResult {
        metric_name: Some(req.metric_name),
        metric_data: Some(
            points
                .into_iter()
                .map(|p| m::MetricDatapoint {
                    average: p.average,
                    maximum: p.maximum,
                    minimum: p.minimum,
                    sample_count: p.sample_count,
                    sum: p.sum,
                    timestamp: Some(convert::ts(p.timestamp_ms)),
                    unit: Some(req.unit),
                })
                .collect(),
        ),
    })
}
