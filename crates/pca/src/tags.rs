//! TagCertificateAuthority, UntagCertificateAuthority and ListTags.

use carapace_kernel::Owner;
use carapace_kernel::retry::commit;
use carapace_store::Write;

use crate::records::CaStatus;
use crate::{MAX_TAGS, Page, PcaError, PrivateCas, Result, ca_row, contended};

/// A tag as given: a key and an optional value.
pub type Tag = (String, Option<String>);

/// Checks tags as AWS does beyond the model's lengths: keys may not use the reserved `aws:`
/// prefix, and one request may not name a key twice.
pub(crate) fn check_tags(tags: &[Tag]) -> Result<()> {
    for (i, (key, _)) in tags.iter().enumerate() {
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(PcaError::InvalidTag(format!("Tag key {key} uses the reserved prefix aws:.")));
        }
        if tags[..i].iter().any(|(k, _)| k == key) {
            return Err(PcaError::InvalidTag(format!("Tag key {key} is given more than once.")));
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(PcaError::TooManyTags(format!("A certificate authority can have at most {MAX_TAGS} tags.")));
    }
    Ok(())
}

impl PrivateCas {
    /// TagCertificateAuthority: adds `tags`, replacing the values of keys it has.
    pub async fn tag_authority(&self, owner: &Owner, arn: &str, tags: Vec<Tag>) -> Result<()> {
        check_tags(&tags)?;
        self.change_tags(owner, arn, |current| {
            for (key, value) in &tags {
                match current.iter_mut().find(|(k, _)| k == key) {
                    Some(tag) => tag.1 = value.clone(),
                    None => current.push((key.clone(), value.clone())),
                }
            }
            if current.len() > MAX_TAGS {
                return Err(PcaError::TooManyTags(format!(
                    "A certificate authority can have at most {MAX_TAGS} tags."
                )));
            }
            Ok(())
        })
        .await
    }

    /// UntagCertificateAuthority: removes each key; a tag given with a value is removed only
    /// while it has that value.
    pub async fn untag_authority(&self, owner: &Owner, arn: &str, tags: Vec<Tag>) -> Result<()> {
        self.change_tags(owner, arn, |current| {
            current.retain(|(k, v)| !tags.iter().any(|(key, value)| key == k && (value.is_none() || value == v)));
            Ok(())
        })
        .await
    }

    /// ListTags, `max` (default and at most 1000) a page.
    pub async fn list_tags(
        &self,
        owner: &Owner,
        arn: &str,
        max: Option<i32>,
        next_token: Option<&str>,
    ) -> Result<Page<Tag>> {
        let (record, _) = self.authority(owner, arn).await?;
        let start = match next_token {
            None => 0,
            Some(t) => t.parse::<usize>().ok().filter(|s| *s <= record.tags.len()).ok_or(PcaError::InvalidNextToken)?,
        };
        let limit = max.map_or(1000, |m| usize::try_from(m).unwrap_or(1000).clamp(1, 1000));
        let end = (start + limit).min(record.tags.len());
        Ok(Page {
            items: record.tags[start..end].to_vec(),
            next_token: (end < record.tags.len()).then(|| end.to_string()),
        })
    }

    async fn change_tags(&self, owner: &Owner, arn: &str, change: impl Fn(&mut Vec<Tag>) -> Result<()>) -> Result<()> {
        carapace_kernel::optimistic!(PcaError, contended(), |_attempt| {
            let (mut record, version) = self.authority(owner, arn).await?;
            if record.status == CaStatus::Deleted {
                return Err(PcaError::InvalidState(format!("The certificate authority {arn} is deleted.")));
            }
            change(&mut record.tags)?;
            let row = ca_row(owner, &record)?;
            Ok(commit(self.core.store.as_ref(), vec![Write::Put { row, expect: Some(version) }]).await?.then_some(()))
        })
    }
}
