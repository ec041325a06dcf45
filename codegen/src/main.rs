//! Generates `crates/model/src/generated/` from the botocore models in `models/`.
//!
//! Run from the repository root with `cargo run -p carapace-codegen`. For each service it
//! writes one module holding the typed DTOs (structs and enums with exact wire names), a
//! `SERVICE` table (see `crates/model/src/schema.rs`) that validation and the CBOR codec
//! walk at run time, and the `Operations` trait a wire crate implements, with the `dispatch`
//! function that calls it (see `crates/model/src/operations.rs`). Output is deterministic and formatted with `rustfmt`, so CI can
//! regenerate and fail on a diff (`codegen/check.sh`).

mod model;
mod naming;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use model::{Model, ShapeDef};
use naming::{doc_line, enum_variants, field_name};

/// ACM operations that get full code: certificates, their tags, validation and the account
/// configuration. The ACME endpoints, the organisation inventory and the `*Member*`
/// operations (a delegated administrator acting on member accounts' resources) answer
/// "not implemented", as every operation outside a service's list does.
const ACM_OPS: &[&str] = &[
    "AddTagsToCertificate",
    "DeleteCertificate",
    "DescribeCertificate",
    "ExportCertificate",
    "GetAccountConfiguration",
    "GetCertificate",
    "ImportCertificate",
    "ListCertificateDomainValidations",
    "ListCertificates",
    "ListTagsForCertificate",
    "ListTagsForResource",
    "PutAccountConfiguration",
    "RemoveTagsFromCertificate",
    "RenewCertificate",
    "RequestCertificate",
    "ResendValidationEmail",
    "RevokeCertificate",
    "SearchCertificates",
    "TagResource",
    "UntagResource",
    "UpdateCertificateOptions",
];

/// Lightsail operations that get full code: the CDN distribution, certificate and
/// operation-tracking APIs Carapace serves. Everything else answers "not implemented".
const LIGHTSAIL_OPS: &[&str] = &[
    "AttachCertificateToDistribution",
    "CreateCertificate",
    "CreateDistribution",
    "DeleteCertificate",
    "DeleteDistribution",
    "DetachCertificateFromDistribution",
    "GetCertificates",
    "GetDistributionBundles",
    "GetDistributionLatestCacheReset",
    "GetDistributionMetricData",
    "GetDistributions",
    "GetOperation",
    "GetOperations",
    "GetOperationsForResource",
    "GetRegions",
    "ResetDistributionCache",
    "TagResource",
    "UntagResource",
    "UpdateDistribution",
    "UpdateDistributionBundle",
];

/// Directory Service operations that get full code: directories (the container for
/// certificates), tags, and the certificate / LDAPS / client-authentication APIs.
const DS_OPS: &[&str] = &[
    "AddTagsToResource",
    "ConnectDirectory",
    "CreateDirectory",
    "CreateMicrosoftAD",
    "DeleteDirectory",
    "DeregisterCertificate",
    "DescribeCertificate",
    "DescribeClientAuthenticationSettings",
    "DescribeDirectories",
    "DescribeLDAPSSettings",
    "DisableClientAuthentication",
    "DisableLDAPS",
    "EnableClientAuthentication",
    "EnableLDAPS",
    "GetDirectoryLimits",
    "ListCertificates",
    "ListTagsForResource",
    "RegisterCertificate",
    "RemoveTagsFromResource",
];

/// AWS Private CA operations that get full code: all of them, so that the DTOs and the
/// `Operations` trait exist for the whole API.
const ACM_PCA_OPS: &[&str] = &[
    "BatchCreateCertificateAuthorityReplica",
    "CreateCertificateAuthority",
    "CreateCertificateAuthorityAssociation",
    "CreateCertificateAuthorityAuditReport",
    "CreateCertificateAuthorityReplica",
    "CreatePermission",
    "DeleteCertificateAuthority",
    "DeleteCertificateAuthorityAssociation",
    "DeletePermission",
    "DeletePolicy",
    "DescribeCertificateAuthority",
    "DescribeCertificateAuthorityAuditReport",
    "GetCertificate",
    "GetCertificateAuthorityCertificate",
    "GetCertificateAuthorityCsr",
    "GetPolicy",
    "ImportCertificateAuthorityCertificate",
    "IssueCertificate",
    "ListCertificateAuthorities",
    "ListCertificateAuthorityAssociations",
    "ListCertificateAuthorityReplicas",
    "ListPermissions",
    "ListTags",
    "PutPolicy",
    "RestoreCertificateAuthority",
    "RevokeCertificate",
    "TagCertificateAuthority",
    "UntagCertificateAuthority",
    "UpdateCertificateAuthority",
];

/// Members typed `String` instead of their enum because AWS sends values outside the
/// model's enum: `DescribeCertificate` and `ListCertificates` show `KeyAlgorithm` as
/// `RSA-2048` / `EC-prime256v1` (hyphen) although the enum, and requests and filters, use
/// `RSA_2048`; Lightsail's TagResource and UntagResource answer operations whose
/// `operationType` is `TagResource` / `UntagResource`, which `OperationType` does not list
/// (the API Reference's response syntax types it `string`).
const STRING_OVERRIDES: &[(&str, &str, &str)] = &[
    ("acm", "CertificateDetail", "KeyAlgorithm"),
    ("acm", "CertificateSummary", "KeyAlgorithm"),
    ("lightsail", "Operation", "operationType"),
];

/// One service to generate.
struct Target {
    /// The model's folder under `models/` and `Service::name`.
    name: &'static str,
    /// The generated module's name.
    module: &'static str,
    /// The operations Carapace serves: they get DTOs, an `OperationName` variant and a
    /// method of the `Operations` trait; every other operation of the model is in the table
    /// with `generated: false`, which the dispatcher answers with `NotImplementedException`
    /// naming it.
    ops: &'static [&'static str],
}

/// The services, in module order.
const TARGETS: &[Target] = &[
    Target { name: "acm", module: "acm", ops: ACM_OPS },
    Target { name: "acm-pca", module: "acm_pca", ops: ACM_PCA_OPS },
    Target { name: "ds", module: "ds", ops: DS_OPS },
    Target { name: "lightsail", module: "lightsail", ops: LIGHTSAIL_OPS },
];

const OUT_DIR: &str = "crates/model/src/generated";

fn main() -> Result<()> {
    let mut files = Vec::new();
    for target in TARGETS {
        let src = format!("models/{}/service-2.json", target.name);
        let text = std::fs::read_to_string(&src).with_context(|| format!("reading {src}"))?;
        let model: Model = serde_json::from_str(&text).with_context(|| format!("parsing {src}"))?;
        let code = generate(target, &src, &model).with_context(|| format!("generating {src}"))?;
        let path = format!("{OUT_DIR}/{}.rs", target.module);
        files.push((path, code));
    }
    let mut module = String::from(
        "//! Generated by carapace-codegen from models/{acm,acm-pca,ds,lightsail}/service-2.json. Do not edit.\n\n",
    );
    for target in TARGETS {
        writeln!(module, "pub mod {};", target.module)?;
    }
    files.push((format!("{OUT_DIR}/mod.rs"), module));

    std::fs::create_dir_all(OUT_DIR)?;
    for (path, code) in &files {
        std::fs::write(path, code).with_context(|| format!("writing {path}"))?;
    }
    // rustfmt picks up the workspace's rustfmt.toml (if any) from the files' location, so
    // the output matches what `cargo fmt` would leave.
    let status = Command::new("rustfmt")
        .args(["--edition", "2024"])
        .args(files.iter().map(|(p, _)| Path::new(p)))
        .status()
        .context("running rustfmt")?;
    if !status.success() {
        bail!("rustfmt failed on the generated code");
    }
    Ok(())
}

/// Everything needed to emit one service module.
struct Gen<'m> {
    service: &'static str,
    model: &'m Model,
    /// Reachable shape names in id order (sorted by name).
    ids: BTreeMap<&'m str, usize>,
    /// `(structure, member)` pairs that need a `Box` to break a cycle.
    boxed: BTreeSet<(&'m str, &'m str)>,
    out: String,
}

fn generate(target: &Target, src: &str, model: &Model) -> Result<String> {
    if target.ops.is_empty() {
        bail!("no operations listed: a service's trait needs at least one");
    }
    for op in target.ops {
        if !model.operations.contains_key(*op) {
            bail!("operation {op} is not in the model");
        }
    }
    let generated: BTreeSet<&str> = target.ops.iter().copied().collect();

    // Roots: inputs and outputs of generated operations, plus every exception (error
    // envelopes need their member casing even for operations we do not serve).
    let mut roots: Vec<&str> = Vec::new();
    for (name, op) in &model.operations {
        if generated.contains(name.as_str()) {
            roots.extend(op.input.iter().chain(&op.output).map(|r| r.shape.as_str()));
        }
    }
    roots.extend(model.shapes.iter().filter(|(_, s)| s.exception).map(|(n, _)| n.as_str()));
    let reachable = reachable(model, roots)?;
    let ids = reachable.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    if reachable.len() > usize::from(u16::MAX) {
        bail!("too many shapes for a u16 ShapeId");
    }

    let mut g = Gen { service: target.name, model, ids, boxed: cycle_members(model, &reachable), out: String::new() };
    writeln!(g.out, "//! Generated by carapace-codegen from {src}. Do not edit.\n")?;
    g.service_table(target, &generated)?;
    g.operation_enum(&generated)?;
    g.operations_trait(&generated)?;
    g.error_enum()?;
    for name in &reachable {
        let shape = &model.shapes[*name];
        if shape.kind == "structure" {
            g.structure(name, shape)?;
        } else if !shape.enum_values.is_empty() {
            g.enumeration(name, shape)?;
        }
    }
    Ok(g.out)
}

/// Every shape reachable from `roots`, sorted by name.
fn reachable<'m>(model: &'m Model, roots: Vec<&'m str>) -> Result<BTreeSet<&'m str>> {
    let mut seen = BTreeSet::new();
    let mut stack = roots;
    while let Some(name) = stack.pop() {
        if !seen.insert(name) {
            continue;
        }
        let shape = model.shapes.get(name).with_context(|| format!("shape {name} is referenced but not defined"))?;
        stack.extend(shape.children());
    }
    Ok(seen)
}

/// Structure members whose type leads back to their own structure without passing through
/// a list or map (which already allocate), so the Rust field must be boxed.
fn cycle_members<'m>(model: &'m Model, shapes: &BTreeSet<&'m str>) -> BTreeSet<(&'m str, &'m str)> {
    let direct = |name: &str| -> Vec<(&'m str, &'m str)> {
        let shape = &model.shapes[name];
        shape
            .members
            .0
            .iter()
            .filter(|(_, m)| model.shapes[&m.shape].kind == "structure")
            .map(|(n, m)| (n.as_str(), m.shape.as_str()))
            .collect()
    };
    let mut boxed = BTreeSet::new();
    for &name in shapes {
        if model.shapes[name].kind != "structure" {
            continue;
        }
        for (member, target) in direct(name) {
            // Does `target` reach `name` through direct structure members?
            let mut seen = BTreeSet::new();
            let mut stack = vec![target];
            while let Some(s) = stack.pop() {
                if s == name {
                    boxed.insert((name, member));
                    break;
                }
                if seen.insert(s) {
                    stack.extend(direct(s).into_iter().map(|(_, t)| t));
                }
            }
        }
    }
    boxed
}

/// Renders an `Option<i64>` bound.
fn bound(v: Option<i64>) -> String {
    match v {
        Some(v) => format!("Some({v})"),
        None => "None".to_owned(),
    }
}

fn bounds(shape: &ShapeDef) -> String {
    format!("s::Bounds {{ min: {}, max: {} }}", bound(shape.min), bound(shape.max))
}

impl<'m> Gen<'m> {
    fn id(&self, shape: &str) -> usize {
        self.ids[shape]
    }

    /// The `pub static SERVICE` table.
    fn service_table(&mut self, target: &Target, generated: &BTreeSet<&str>) -> Result<()> {
        let meta = &self.model.metadata;
        let signing = meta.signing_name.as_deref().unwrap_or(&meta.endpoint_prefix);
        let cbor = meta.protocols.iter().any(|p| p == "smithy-rpc-v2-cbor");
        let mut t = String::new();
        // Qualified, because models have shapes named `Operation`, `Shape` and the like.
        writeln!(t, "use crate::schema as s;\n")?;
        writeln!(t, "/// The `{}` model as a run-time table.", target.name)?;
        writeln!(t, "pub static SERVICE: s::Service = s::Service {{")?;
        writeln!(t, "name: {:?},", target.name)?;
        writeln!(t, "target_prefix: {:?},", meta.target_prefix)?;
        writeln!(t, "signing_name: {signing:?},")?;
        writeln!(t, "rpc_v2_cbor: {cbor},")?;
        writeln!(t, "operations: &[")?;
        // `model.operations` is a BTreeMap, so this is sorted by name as binary search needs.
        for (name, op) in &self.model.operations {
            let on = generated.contains(name.as_str());
            let io = |r: &Option<model::ShapeRef>| match r {
                Some(r) if on => format!("Some({})", self.id(&r.shape)),
                _ => "None".to_owned(),
            };
            writeln!(
                t,
                "s::Operation {{ name: {name:?}, input: {}, output: {}, generated: {on} }},",
                io(&op.input),
                io(&op.output)
            )?;
        }
        writeln!(t, "],\nshapes: &[")?;
        for (name, id) in &self.ids {
            let s = &self.model.shapes[*name];
            let kind = match s.kind.as_str() {
                "string" => format!(
                    "s::Kind::String {{ len: {}, pattern: {}, enum_values: &{:?} }}",
                    bounds(s),
                    match &s.pattern {
                        Some(p) => format!("Some({p:?})"),
                        None => "None".to_owned(),
                    },
                    s.enum_values
                ),
                "integer" => format!("s::Kind::Integer({})", bounds(s)),
                "long" => format!("s::Kind::Long({})", bounds(s)),
                "double" | "float" => "s::Kind::Double".to_owned(),
                "boolean" => "s::Kind::Boolean".to_owned(),
                "timestamp" => "s::Kind::Timestamp".to_owned(),
                "blob" => format!("s::Kind::Blob({})", bounds(s)),
                "list" => format!("s::Kind::List {{ member: {}, len: {} }}", self.id(&s.member()?.shape), bounds(s)),
                "map" => format!(
                    "s::Kind::Map {{ key: {}, value: {}, len: {} }}",
                    self.id(&s.key()?.shape),
                    self.id(&s.value()?.shape),
                    bounds(s)
                ),
                "structure" => {
                    let mut k = String::from("s::Kind::Structure { members: &[");
                    for (m, def) in &s.members.0 {
                        write!(
                            k,
                            "s::Member {{ name: {m:?}, shape: {}, required: {} }},",
                            self.id(&def.shape),
                            s.required.contains(m)
                        )?;
                    }
                    k.push_str("], error: ");
                    if s.exception {
                        let status = s.error.as_ref().and_then(|e| e.http_status_code).unwrap_or(if s.fault {
                            500
                        } else {
                            400
                        });
                        write!(k, "Some(s::ErrorInfo {{ status: {status}, fault: {} }})", s.fault)?;
                    } else {
                        k.push_str("None");
                    }
                    k.push_str(" }");
                    k
                }
                other => bail!("shape {name} has unsupported type {other}"),
            };
            writeln!(t, "// {id}\ns::Shape {{ name: {name:?}, sensitive: {}, kind: {kind} }},", s.sensitive)?;
        }
        writeln!(t, "],\n}};\n")?;
        self.out.push_str(&t);
        Ok(())
    }

    /// `OperationName`: the operations this module generates, so a handler's dispatch
    /// `match` is exhaustive and an operation without a handler does not compile.
    fn operation_enum(&mut self, generated: &BTreeSet<&str>) -> Result<()> {
        if self.model.shapes.contains_key("OperationName") {
            bail!("the model has a shape named OperationName");
        }
        let mut t = String::new();
        writeln!(t, "/// The operations of this model that Carapace serves (the others answer")?;
        writeln!(t, "/// `NotImplementedException` before any handler runs).")?;
        writeln!(t, "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]")?;
        writeln!(t, "pub enum OperationName {{")?;
        for name in generated {
            writeln!(t, "/// `{name}`\n{name},")?;
        }
        writeln!(t, "}}\n\nimpl OperationName {{")?;
        writeln!(t, "/// Every served operation, sorted by name.\npub const ALL: &[Self] = &[")?;
        for name in generated {
            writeln!(t, "Self::{name},")?;
        }
        writeln!(t, "];\n\n/// The operation's wire name.\npub fn as_str(self) -> &'static str {{\nmatch self {{")?;
        for name in generated {
            writeln!(t, "Self::{name} => {name:?},")?;
        }
        writeln!(t, "}}\n}}\n\n/// The served operation of that wire name.")?;
        writeln!(t, "pub fn from_wire(name: &str) -> Option<Self> {{\nmatch name {{")?;
        for name in generated {
            writeln!(t, "{name:?} => Some(Self::{name}),")?;
        }
        writeln!(t, "_ => None,\n}}\n}}\n")?;
        writeln!(t, "/// The served operation an operation of [`SERVICE`] is; one outside the served list")?;
        writeln!(t, "/// is not implemented (the dispatcher answers those before any handler runs).")?;
        writeln!(t, "pub fn of(operation: &s::Operation) -> Result<Self, crate::operations::NotImplemented> {{")?;
        writeln!(t, "Self::from_wire(operation.name)")?;
        writeln!(
            t,
            ".ok_or(crate::operations::NotImplemented {{ service: SERVICE.name, operation: operation.name }})"
        )?;
        writeln!(t, "}}\n}}\n")?;
        self.out.push_str(&t);
        Ok(())
    }

    /// `Operations`: one method per served operation on its typed input and output (none for
    /// an operation whose model has none), each defaulting to `NotImplemented`; and
    /// `dispatch`, which decodes an input document once and calls the operation's method.
    fn operations_trait(&mut self, generated: &BTreeSet<&str>) -> Result<()> {
        for name in ["Operations", "dispatch"] {
            if self.model.shapes.contains_key(name) {
                bail!("the model has a shape named {name}");
            }
        }
        let ops: Vec<(&str, String, Option<&str>, Option<&str>)> = generated
            .iter()
            .map(|name| {
                let op = &self.model.operations[*name];
                (
                    *name,
                    field_name(name),
                    op.input.as_ref().map(|r| r.shape.as_str()),
                    op.output.as_ref().map(|r| r.shape.as_str()),
                )
            })
            .collect();
        let service = self.service;
        let mut t = String::new();
        writeln!(t, "/// The `{service}` operations Carapace serves, one method each on the operation's typed")?;
        writeln!(t, "/// input and output. A method left out answers `NotImplementedException` naming its")?;
        writeln!(t, "/// operation; [`dispatch`] calls the method a request names.")?;
        writeln!(t, "pub trait Operations: Send + Sync {{")?;
        writeln!(t, "/// What a method knows of the request it answers.\ntype Context: Sync;")?;
        writeln!(t, "/// What a method fails with; the defaults fail with [`crate::operations::NotImplemented`].")?;
        writeln!(t, "type Error: From<crate::operations::NotImplemented> + Send;\n")?;
        for (name, method, input, output) in &ops {
            let doc = doc_line(self.model.operations[*name].documentation.as_deref(), name);
            writeln!(t, "/// `{name}`: {doc}")?;
            write!(t, "fn {method}(&self, ctx: &Self::Context")?;
            if let Some(input) = input {
                write!(t, ", input: {input}")?;
            }
            writeln!(
                t,
                ") -> impl std::future::Future<Output = Result<{}, Self::Error>> + Send {{",
                output.unwrap_or("()")
            )?;
            writeln!(t, "{}", if input.is_some() { "let _ = (ctx, input);" } else { "let _ = ctx;" })?;
            writeln!(t, "crate::operations::not_implemented({service:?}, {name:?})\n}}\n")?;
        }
        writeln!(t, "}}\n")?;
        writeln!(t, "/// Decodes `input`, already validated against `operation`'s input shape, into the")?;
        writeln!(t, "/// operation's input type and calls `handler`'s method for it.")?;
        writeln!(
            t,
            "pub async fn dispatch<H: Operations>(handler: &H, ctx: &H::Context, operation: OperationName, input: serde_json::Value)"
        )?;
        writeln!(t, "-> Result<crate::operations::Answer, crate::operations::DispatchError<H::Error>> {{")?;
        // Only what some arm uses: `answer` for an output, `empty` for none, `decode` for an input.
        let mut uses = vec!["DispatchError"];
        uses.extend(ops.iter().any(|(.., o)| o.is_some()).then_some("answer"));
        uses.extend(ops.iter().any(|(_, _, i, _)| i.is_some()).then_some("decode"));
        uses.extend(ops.iter().any(|(.., o)| o.is_none()).then_some("empty"));
        writeln!(t, "use crate::operations::{{{}}};", uses.join(", "))?;
        writeln!(t, "Ok(match operation {{")?;
        for (name, method, input, output) in &ops {
            let call = format!(
                "handler.{method}(ctx{}).await.map_err(DispatchError::Operation)?",
                if input.is_some() { ", decode(input)?" } else { "" }
            );
            match output {
                Some(_) => writeln!(t, "OperationName::{name} => answer({call}),")?,
                None => writeln!(t, "OperationName::{name} => {{\n{call};\nempty()\n}}")?,
            }
        }
        writeln!(t, "}})\n}}\n")?;
        self.out.push_str(&t);
        Ok(())
    }

    /// `ErrorCode`: every error shape of the model with its wire code and HTTP status (the
    /// `error` trait's status, else 500 for a fault and 400 for a client error).
    fn error_enum(&mut self) -> Result<()> {
        if self.model.shapes.contains_key("ErrorCode") {
            bail!("the model has a shape named ErrorCode");
        }
        let errors: Vec<(&str, u16, bool)> = self
            .model
            .shapes
            .iter()
            .filter(|(_, s)| s.exception)
            .map(|(name, s)| {
                let fallback = if s.fault { 500 } else { 400 };
                (name.as_str(), s.error.as_ref().and_then(|e| e.http_status_code).unwrap_or(fallback), s.fault)
            })
            .collect();
        let mut t = String::new();
        writeln!(t, "/// Every error shape of the model: the codes this service answers with.")?;
        writeln!(t, "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]")?;
        writeln!(t, "pub enum ErrorCode {{")?;
        for (name, status, _) in &errors {
            writeln!(t, "/// `{name}` (HTTP {status})\n{name},")?;
        }
        writeln!(t, "}}\n\nimpl crate::ModelError for ErrorCode {{")?;
        writeln!(t, "fn code(self) -> &'static str {{\nmatch self {{")?;
        for (name, _, _) in &errors {
            writeln!(t, "Self::{name} => {name:?},")?;
        }
        writeln!(t, "}}\n}}\n\nfn status(self) -> u16 {{\nmatch self {{")?;
        for (name, status, _) in &errors {
            writeln!(t, "Self::{name} => {status},")?;
        }
        writeln!(t, "}}\n}}\n\nfn is_fault(self) -> bool {{\nmatch self {{")?;
        for (name, _, fault) in &errors {
            writeln!(t, "Self::{name} => {fault},")?;
        }
        writeln!(t, "}}\n}}\n}}\n")?;
        self.out.push_str(&t);
        Ok(())
    }

    /// The Rust type of a member of shape `shape`.
    fn rust_type(&self, shape: &str) -> Result<String> {
        let s = &self.model.shapes[shape];
        Ok(match s.kind.as_str() {
            "structure" => shape.to_owned(),
            "string" if !s.enum_values.is_empty() => shape.to_owned(),
            "string" => "String".to_owned(),
            "integer" => "i32".to_owned(),
            "long" => "i64".to_owned(),
            "double" => "f64".to_owned(),
            "float" => "f32".to_owned(),
            "boolean" => "bool".to_owned(),
            "timestamp" => "crate::Timestamp".to_owned(),
            "blob" => "crate::Blob".to_owned(),
            "list" => format!("Vec<{}>", self.rust_type(&s.member()?.shape)?),
            "map" => format!("std::collections::BTreeMap<String, {}>", self.rust_type(&s.value()?.shape)?),
            other => bail!("shape {shape} has unsupported type {other}"),
        })
    }

    fn structure(&mut self, name: &str, shape: &ShapeDef) -> Result<()> {
        let mut t = String::new();
        writeln!(t, "/// {}", doc_line(shape.documentation.as_deref(), name))?;
        writeln!(t, "#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]")?;
        writeln!(t, "pub struct {name} {{")?;
        let mut used = BTreeSet::new();
        for (member, def) in &shape.members.0 {
            let mut field = field_name(member);
            while !used.insert(field.clone()) {
                field.push('_');
            }
            let mut ty = self.rust_type(&def.shape)?;
            if STRING_OVERRIDES.contains(&(self.service, name, member.as_str())) {
                ty = "String".to_owned();
            }
            if self.boxed.contains(&(name, member.as_str())) {
                ty = format!("Box<{ty}>");
            }
            let doc = def.documentation.as_deref().or(self.model.shapes[&def.shape].documentation.as_deref());
            writeln!(t, "/// {}", doc_line(doc, member))?;
            if shape.required.contains(member) {
                writeln!(t, "#[serde(rename = {member:?})]")?;
                writeln!(t, "pub {field}: {ty},")?;
            } else {
                writeln!(t, "#[serde(rename = {member:?}, default, skip_serializing_if = \"Option::is_none\")]")?;
                writeln!(t, "pub {field}: Option<{ty}>,")?;
            }
        }
        writeln!(t, "}}\n")?;
        self.out.push_str(&t);
        Ok(())
    }

    fn enumeration(&mut self, name: &str, shape: &ShapeDef) -> Result<()> {
        let variants = enum_variants(&shape.enum_values);
        let mut t = String::new();
        writeln!(t, "/// {}", doc_line(shape.documentation.as_deref(), name))?;
        writeln!(
            t,
            "#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]"
        )?;
        writeln!(t, "pub enum {name} {{")?;
        for (i, (value, variant)) in shape.enum_values.iter().zip(&variants).enumerate() {
            writeln!(t, "/// `{value}`")?;
            if i == 0 {
                writeln!(t, "#[default]")?;
            }
            writeln!(t, "#[serde(rename = {value:?})]")?;
            writeln!(t, "{variant},")?;
        }
        writeln!(t, "}}\n")?;
        writeln!(t, "impl {name} {{")?;
        writeln!(t, "/// Every value, in model order.")?;
        writeln!(t, "pub const ALL: &[Self] = &[")?;
        for v in &variants {
            writeln!(t, "Self::{v},")?;
        }
        writeln!(t, "];\n")?;
        writeln!(t, "/// The wire value.")?;
        writeln!(t, "pub fn as_str(&self) -> &'static str {{")?;
        writeln!(t, "match self {{")?;
        for (value, variant) in shape.enum_values.iter().zip(&variants) {
            writeln!(t, "Self::{variant} => {value:?},")?;
        }
        writeln!(t, "}}\n}}\n}}\n")?;
        writeln!(
            t,
            "impl std::str::FromStr for {name} {{\n\
             type Err = crate::UnknownEnumValue;\n\
             fn from_str(s: &str) -> Result<Self, Self::Err> {{\n\
             Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| crate::UnknownEnumValue::new({name:?}, s))\n\
             }}\n}}\n"
        )?;
        writeln!(
            t,
            "impl std::fmt::Display for {name} {{\n\
             fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{\n\
             f.write_str(self.as_str())\n\
             }}\n}}\n"
        )?;
        self.out.push_str(&t);
        Ok(())
    }
}
