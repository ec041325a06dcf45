//! Resource policies (PutPolicy, GetPolicy, DeletePolicy) and their enforcement: how a CA is
//! shared with other accounts, as AWS RAM shares it, without IAM.
//!
//! A policy is the JSON document AWS Private CA takes
//! (<https://docs.aws.amazon.com/privateca/latest/userguide/pca-rbp.html>): statements with
//! `Effect` `Allow` or `Deny`, `Principal` `{"AWS": …}` naming accounts (`111122223333` or
//! `arn:aws:iam::111122223333:root`, one or a list), `Action` naming `acm-pca:` actions (or
//! `acm-pca:*`), `Resource` the CA's ARN or `*`, and optionally the one condition AWS's own
//! policies use, `StringEquals` on `acm-pca:TemplateArn`. Anything else is refused with
//! `InvalidPolicyException` naming it, so no statement is stored and silently not applied.
//! A call from another account is allowed when an `Allow` statement matches it and no `Deny`
//! does; the owner's own calls need no policy.

use carapace_kernel::Owner;
use carapace_kernel::retry::commit;
use carapace_store::Write;
use serde_json::Value;

use crate::records::CaStatus;
use crate::{PcaError, PrivateCas, Result, ca_row, contended};

/// The actions a policy may grant (AWS Private CA lets policies grant these).
const ACTIONS: &[&str] = &[
    "IssueCertificate",
    "GetCertificate",
    "GetCertificateAuthorityCertificate",
    "DescribeCertificateAuthority",
    "ListPermissions",
];

/// One statement, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    allow: bool,
    accounts: Vec<String>,
    actions: Vec<String>,
    template: Option<Vec<String>>,
}

/// Parses and checks a policy document for the CA `ca_arn`.
fn parse(document: &str, ca_arn: &str) -> Result<Vec<Statement>> {
    let invalid = |why: String| PcaError::InvalidPolicy(format!("The policy is not valid: {why}"));
    let doc: Value = serde_json::from_str(document).map_err(|e| invalid(format!("not JSON ({e})")))?;
    let statements = match doc.get("Statement") {
        Some(Value::Array(list)) => list.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => return Err(invalid("it has no Statement".into())),
    };
    let strings = |v: Option<&Value>, what: &str| -> Result<Vec<String>> {
        match v {
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_str().map(str::to_owned).ok_or_else(|| invalid(format!("{what} must be strings"))))
                .collect(),
            _ => Err(invalid(format!("a statement has no {what}"))),
        }
    };
    let mut out = Vec::with_capacity(statements.len());
    for s in &statements {
        let Value::Object(fields) = s else { return Err(invalid("a statement is not an object".into())) };
        for key in fields.keys() {
            if !["Sid", "Effect", "Principal", "Action", "Resource", "Condition"].contains(&key.as_str()) {
                return Err(invalid(format!("{key} is not supported by Carapace")));
            }
        }
        let allow = match s.get("Effect").and_then(Value::as_str) {
            Some("Allow") => true,
            Some("Deny") => false,
            _ => return Err(invalid("Effect must be Allow or Deny".into())),
        };
        let principals = match s.get("Principal") {
            Some(Value::Object(p)) if p.len() == 1 && p.contains_key("AWS") => strings(p.get("AWS"), "Principal.AWS")?,
            _ => return Err(invalid("Principal must be {\"AWS\": accounts}".into())),
        };
        let accounts = principals
            .iter()
            .map(|p| {
                let account = p.strip_prefix("arn:aws:iam::").and_then(|r| r.strip_suffix(":root")).unwrap_or(p);
                if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
                    Ok(account.to_owned())
                } else {
                    Err(invalid(format!("principal {p} is not an account")))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let actions = strings(s.get("Action"), "Action")?
            .iter()
            .map(|a| match a.strip_prefix("acm-pca:") {
                Some("*") => Ok("*".to_owned()),
                Some(action) if ACTIONS.contains(&action) => Ok(action.to_owned()),
                _ => Err(invalid(format!("action {a} cannot be granted on a certificate authority"))),
            })
            .collect::<Result<Vec<_>>>()?;
        for resource in strings(s.get("Resource"), "Resource")? {
            if resource != "*" && resource != ca_arn {
                return Err(invalid(format!("resource {resource} is not this certificate authority")));
            }
        }
        let template = match s.get("Condition") {
            None => None,
            Some(Value::Object(c)) => {
                let equals = match (c.len(), c.get("StringEquals")) {
                    (1, Some(Value::Object(e))) if e.len() == 1 => e,
                    _ => {
                        return Err(invalid(
                            "only a StringEquals condition on acm-pca:TemplateArn is supported".into(),
                        ));
                    }
                };
                Some(strings(equals.get("acm-pca:TemplateArn"), "acm-pca:TemplateArn condition")?)
            }
            Some(_) => return Err(invalid("Condition must be an object".into())),
        };
        out.push(Statement { allow, accounts, actions, template });
    }
    Ok(out)
}

/// Whether `policy` lets `account` do `action` (with `template`, for IssueCertificate).
pub(crate) fn allows(policy: Option<&str>, ca_arn: &str, account: &str, action: &str, template: Option<&str>) -> bool {
    let Some(statements) = policy.and_then(|p| parse(p, ca_arn).ok()) else { return false };
    let matches = |s: &&Statement| {
        s.accounts.iter().any(|a| a == account)
            && s.actions.iter().any(|a| a == "*" || a == action)
            && s.template.as_ref().is_none_or(|t| template.is_some_and(|tpl| t.iter().any(|x| x == tpl)))
    };
    let matching: Vec<&Statement> = statements.iter().filter(matches).collect();
    matching.iter().any(|s| s.allow) && !matching.iter().any(|s| !s.allow)
}

impl PrivateCas {
    /// PutPolicy.
    pub async fn put_policy(&self, owner: &Owner, ca_arn: &str, document: &str) -> Result<()> {
        parse(document, ca_arn)?;
        self.change_policy(owner, ca_arn, Some(document.to_owned())).await
    }

    /// GetPolicy.
    pub async fn get_policy(&self, owner: &Owner, ca_arn: &str) -> Result<String> {
        let (record, _) = self.authority(owner, ca_arn).await?;
        record.policy.ok_or_else(|| PcaError::NotFound(format!("The certificate authority {ca_arn} has no policy.")))
    }

    /// DeletePolicy.
    pub async fn delete_policy(&self, owner: &Owner, ca_arn: &str) -> Result<()> {
        let (record, _) = self.authority(owner, ca_arn).await?;
        if record.policy.is_none() {
            return Err(PcaError::NotFound(format!("The certificate authority {ca_arn} has no policy.")));
        }
        self.change_policy(owner, ca_arn, None).await
    }

    async fn change_policy(&self, owner: &Owner, ca_arn: &str, policy: Option<String>) -> Result<()> {
        carapace_kernel::optimistic!(PcaError, contended(), |_attempt| {
            let (mut record, version) = self.authority(owner, ca_arn).await?;
            if record.status == CaStatus::Deleted {
                return Err(PcaError::InvalidState(format!("The certificate authority {ca_arn} is deleted.")));
            }
            record.policy = policy.clone();
            let row = ca_row(owner, &record)?;
            Ok(commit(self.core.store.as_ref(), vec![Write::Put { row, expect: Some(version) }]).await?.then_some(()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "arn:aws:acm-pca:us-east-1:111111111111:certificate-authority/c";

    #[test]
    fn statements_allow_and_deny_by_account_action_and_template() {
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "222222222222"}, "Action": ["acm-pca:IssueCertificate", "acm-pca:GetCertificate"], "Resource": CA,
                 "Condition": {"StringEquals": {"acm-pca:TemplateArn": "arn:aws:acm-pca:::template/EndEntityCertificate/V1"}}},
                {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::333333333333:root"]}, "Action": "acm-pca:*", "Resource": "*"},
                {"Effect": "Deny", "Principal": {"AWS": "333333333333"}, "Action": "acm-pca:GetCertificate", "Resource": "*"}
            ]
        })
        .to_string();
        let end_entity = Some("arn:aws:acm-pca:::template/EndEntityCertificate/V1");
        assert!(allows(Some(&policy), CA, "222222222222", "IssueCertificate", end_entity));
        assert!(!allows(
            Some(&policy),
            CA,
            "222222222222",
            "IssueCertificate",
            Some("arn:aws:acm-pca:::template/RootCACertificate/V1")
        ));
        assert!(allows(Some(&policy), CA, "333333333333", "DescribeCertificateAuthority", None));
        assert!(!allows(Some(&policy), CA, "333333333333", "GetCertificate", None));
        assert!(!allows(Some(&policy), CA, "444444444444", "DescribeCertificateAuthority", None));
        assert!(!allows(None, CA, "222222222222", "IssueCertificate", end_entity));
        for bad in [
            r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "acm-pca:IssueCertificate", "Resource": "*"}]}"#,
            r#"{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "222222222222"}, "Action": "acm-pca:DeleteCertificateAuthority", "Resource": "*"}]}"#,
            r#"{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "222222222222"}, "Action": "acm-pca:IssueCertificate", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "1.2.3.4"}}}]}"#,
            "not json",
        ] {
            assert!(matches!(parse(bad, CA), Err(PcaError::InvalidPolicy(_))), "{bad}");
        }
    }
}
