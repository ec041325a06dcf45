//! The parts of a botocore `service-2.json` the generator reads.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

/// A whole model file.
#[derive(Deserialize)]
pub struct Model {
    pub metadata: Metadata,
    pub operations: BTreeMap<String, OperationDef>,
    pub shapes: BTreeMap<String, ShapeDef>,
}

/// The model's `metadata` block.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub target_prefix: String,
    pub signing_name: Option<String>,
    pub endpoint_prefix: String,
    #[serde(default)]
    pub protocols: Vec<String>,
}

/// One operation.
#[derive(Deserialize)]
pub struct OperationDef {
    pub input: Option<ShapeRef>,
    pub output: Option<ShapeRef>,
    pub documentation: Option<String>,
}

/// A reference to a shape by name (`{"shape": "Arn"}`), with its documentation when it is a
/// structure member.
#[derive(Deserialize)]
pub struct ShapeRef {
    pub shape: String,
    pub documentation: Option<String>,
}

/// The `error` trait of an exception shape.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDef {
    pub http_status_code: Option<u16>,
}

/// One shape.
#[derive(Deserialize)]
pub struct ShapeDef {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub members: Ordered<ShapeRef>,
    #[serde(default)]
    pub required: Vec<String>,
    #[serde(default, deserialize_with = "number")]
    pub min: Option<i64>,
    #[serde(default, deserialize_with = "number")]
    pub max: Option<i64>,
    pub pattern: Option<String>,
    #[serde(default, rename = "enum")]
    pub enum_values: Vec<String>,
    member: Option<ShapeRef>,
    key: Option<ShapeRef>,
    value: Option<ShapeRef>,
    #[serde(default)]
    pub exception: bool,
    #[serde(default)]
    pub fault: bool,
    pub error: Option<ErrorDef>,
    #[serde(default)]
    pub sensitive: bool,
    pub documentation: Option<String>,
}

impl ShapeDef {
    /// Names of the shapes this one refers to.
    pub fn children(&self) -> impl Iterator<Item = &str> {
        self.members
            .0
            .iter()
            .map(|(_, m)| m)
            .chain(&self.member)
            .chain(&self.key)
            .chain(&self.value)
            .map(|r| r.shape.as_str())
    }

    /// A list's member.
    pub fn member(&self) -> Result<&ShapeRef> {
        self.member.as_ref().context("list without member")
    }

    /// A map's key.
    pub fn key(&self) -> Result<&ShapeRef> {
        self.key.as_ref().context("map without key")
    }

    /// A map's value.
    pub fn value(&self) -> Result<&ShapeRef> {
        self.value.as_ref().context("map without value")
    }
}

/// Reads `min`/`max`, which the models write as integers but occasionally as floats.
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let n = Option::<serde_json::Number>::deserialize(d)?;
    Ok(n.and_then(|n| n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))))
}

/// A JSON object kept in file order: member order is the order validation reports
/// violations in, and the order of fields in the generated structs.
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}
