//! TagResource and UntagResource for certificates and distributions, and Lightsail's tag
//! rules (Lightsail Developer Guide, "Tags in Amazon Lightsail": at most 50 tags, keys of 1
//! to 128 and values of up to 256 characters, keys unique per resource; keys starting with
//! `aws:` are reserved, as across AWS).

use carapace_store::{Key, Row, Write};

use super::operations::{OperationView, new_operation};
use super::records::{self, CERTIFICATE_KIND, CertificateRecord, DISTRIBUTION_KIND, DistributionRecord};
use super::{LightsailError, LightsailManager, Result};
use crate::records::{OperationType, ResourceType};
use carapace_acm::{Owner, Tag};

/// Tags per resource.
pub const MAX_TAGS: usize = 50;

fn bad_tag(message: String) -> LightsailError {
    LightsailError::invalid(
        "InvalidTag",
        message,
        "Tag keys are 1 to 128 characters, values up to 256, at most 50 tags.",
    )
}

/// Checks tags as given.
pub fn check(tags: &[Tag]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(bad_tag(format!("A resource can have at most {MAX_TAGS} tags.")));
    }
    for t in tags {
        if t.key.is_empty() || t.key.chars().count() > 128 {
            return Err(bad_tag(format!("Tag keys must be 1 to 128 characters long: \"{}\".", t.key)));
        }
        if t.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(bad_tag(format!("Tag keys starting with aws: are reserved: \"{}\".", t.key)));
        }
        if t.value.as_ref().is_some_and(|v| v.chars().count() > 256) {
            return Err(bad_tag(format!("The value of tag \"{}\" is longer than 256 characters.", t.key)));
        }
    }
    Ok(())
}

/// Adds or replaces tags (a key given twice keeps the last value).
fn merge(into: &mut Vec<Tag>, add: &[Tag]) -> Result<()> {
    for t in add {
        match into.iter_mut().find(|o| o.key == t.key) {
            Some(o) => o.value = t.value.clone(),
            None => into.push(t.clone()),
        }
    }
    if into.len() > MAX_TAGS {
        return Err(bad_tag(format!("A resource can have at most {MAX_TAGS} tags.")));
    }
    Ok(())
}

/// Which resource a tag call names.
enum Target {
    Distribution(Key),
    Certificate(Key),
}

impl LightsailManager {
    /// Finds the resource by name (and ARN, when given): a distribution (us-east-1 only)
    /// or a certificate.
    async fn tag_target(&self, owner: &Owner, name: &str, arn: Option<&str>) -> Result<Target> {
        let wants = |kind: &str| arn.is_none_or(|a| a.contains(&format!(":{kind}/")));
        if owner.region == super::DISTRIBUTION_REGION && wants("Distribution") {
            let key = Key::new(DISTRIBUTION_KIND, "", format!("{}/{name}", owner.account));
            if let Some(row) = self.core.store.get(&key).await? {
                let d: DistributionRecord = records::decode(&row.body)?;
                if arn.is_none_or(|a| a == d.arn) {
                    return Ok(Target::Distribution(key));
                }
            }
        }
        if wants("Certificate") {
            let key = Key::new(CERTIFICATE_KIND, owner.scope(), name);
            if let Some(row) = self.core.store.get(&key).await? {
                let c: CertificateRecord = records::decode(&row.body)?;
                if arn.is_none_or(|a| a == c.arn) {
                    return Ok(Target::Certificate(key));
                }
            }
        }
        Err(LightsailError::does_not_exist("Resource", name))
    }

    /// TagResource.
    pub async fn tag_resource(
        &self,
        owner: &Owner,
        name: &str,
        arn: Option<&str>,
        tags: &[Tag],
    ) -> Result<Vec<OperationView>> {
        check(tags)?;
        self.change_tags(owner, name, arn, OperationType::TagResource, |t| merge(t, tags)).await
    }

    /// UntagResource.
    pub async fn untag_resource(
        &self,
        owner: &Owner,
        name: &str,
        arn: Option<&str>,
        keys: &[String],
    ) -> Result<Vec<OperationView>> {
        self.change_tags(owner, name, arn, OperationType::UntagResource, |t| {
            t.retain(|x| !keys.contains(&x.key));
            Ok(())
        })
        .await
    }

    async fn change_tags(
        &self,
        owner: &Owner,
        name: &str,
        arn: Option<&str>,
        operation_type: OperationType,
        change: impl Fn(&mut Vec<Tag>) -> Result<()>,
    ) -> Result<Vec<OperationView>> {
        carapace_kernel::optimistic!(LightsailError, LightsailError::busy("resource"), |_| {
            let target = self.tag_target(owner, name, arn).await?;
            let (key, resource_type) = match &target {
                Target::Distribution(k) => (k, ResourceType::Distribution),
                Target::Certificate(k) => (k, ResourceType::Certificate),
            };
            let Some(row) = self.core.store.get(key).await? else { return Ok(None) };
            let body = match target {
                Target::Distribution(_) => {
                    let mut d: DistributionRecord = records::decode(&row.body)?;
                    change(&mut d.tags)?;
                    records::encode(&d)?
                }
                Target::Certificate(_) => {
                    let mut c: CertificateRecord = records::decode(&row.body)?;
                    change(&mut c.tags)?;
                    records::encode(&c)?
                }
            };
            let (op, op_writes) = new_operation(owner, resource_type, name, operation_type, self.now_ms())?;
            let mut writes = vec![Write::Put {
                row: Row { key: key.clone(), version: 0, created_ms: row.created_ms, body },
                expect: Some(row.version),
            }];
            writes.extend(op_writes);
            Ok(carapace_kernel::retry::commit(self.core.store.as_ref(), writes)
                .await?
                .then(|| vec![OperationView::as_answered(op)]))
        })
    }
}
