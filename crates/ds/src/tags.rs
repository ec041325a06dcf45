//! Tags: `AddTagsToResource`, `RemoveTagsFromResource` and `ListTagsForResource`.

use super::{Directories, DsError, MAX_TAGS, Page, Result, check_tag_keys, offset_page, retry};

impl Directories {
    /// `AddTagsToResource`: adds or overwrites.
    pub async fn add_tags(&self, scope: &str, id: &str, tags: &[(String, String)]) -> Result<()> {
        check_tag_keys(tags.iter().map(|(k, _)| k.as_str()))?;
        retry(|| async {
            let (mut record, version) = self.directory(scope, id).await?;
            for (k, v) in tags {
                match record.tags.iter_mut().find(|(key, _)| key == k) {
                    Some(existing) => existing.1 = v.clone(),
                    None => record.tags.push((k.clone(), v.clone())),
                }
            }
            if record.tags.len() > MAX_TAGS {
                return Err(DsError::TagLimitExceeded(format!(
                    "A directory can have at most {MAX_TAGS} tags; this request would give {id} {}.",
                    record.tags.len()
                )));
            }
            self.put_directory(scope, &record, version).await
        })
        .await
    }

    /// `RemoveTagsFromResource`: keys that are not there are ignored.
    pub async fn remove_tags(&self, scope: &str, id: &str, keys: &[String]) -> Result<()> {
        check_tag_keys(keys.iter().map(String::as_str))?;
        retry(|| async {
            let (mut record, version) = self.directory(scope, id).await?;
            record.tags.retain(|(k, _)| !keys.contains(k));
            self.put_directory(scope, &record, version).await
        })
        .await
    }

    /// `ListTagsForResource`.
    pub async fn list_tags(
        &self,
        scope: &str,
        id: &str,
        limit: Option<usize>,
        token: Option<&str>,
    ) -> Result<Page<(String, String)>> {
        let (record, _) = self.directory(scope, id).await?;
        offset_page(record.tags, limit, token)
    }
}
