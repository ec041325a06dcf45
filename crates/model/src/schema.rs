//! The shape tables the generator emits for each service, and the types they are made of.
//!
//! A [`Service`] is a flat, `'static` copy of the parts of a botocore model that the wire
//! layer needs at run time: operation names, their input and output shapes, every shape's
//! constraints and the error shapes with their member casing. Typed DTOs live beside it in
//! the generated modules; this table is what validation and the CBOR codec walk.

/// Index of a shape in [`Service::shapes`].
pub type ShapeId = u16;

/// One AWS service as described by its model.
#[derive(Debug)]
pub struct Service {
    /// Short name used in logs and metrics: `acm`, `lightsail`, `ds`.
    pub name: &'static str,
    /// `X-Amz-Target` prefix for awsJson1.1, e.g. `CertificateManager`.
    pub target_prefix: &'static str,
    /// SigV4 signing name (the `service` part of the credential scope), e.g. `acm`, `ds`.
    pub signing_name: &'static str,
    /// Whether the model lists Smithy RPC v2 CBOR among its protocols.
    pub rpc_v2_cbor: bool,
    /// Every operation in the model, sorted by name.
    pub operations: &'static [Operation],
    /// Every shape the generated operations reach, indexed by [`ShapeId`].
    pub shapes: &'static [Shape],
}

/// One operation of a service.
#[derive(Debug)]
pub struct Operation {
    /// The operation name, e.g. `RequestCertificate`.
    pub name: &'static str,
    /// Input structure, absent when the operation takes none or was not generated.
    pub input: Option<ShapeId>,
    /// Output structure, absent when the operation returns none or was not generated.
    pub output: Option<ShapeId>,
    /// False for operations that are in the model but outside what this build generated.
    pub generated: bool,
}

/// A named shape and its kind.
#[derive(Debug)]
pub struct Shape {
    /// The shape's name in the model.
    pub name: &'static str,
    /// The model marks values of this shape sensitive (passwords, private keys): they are
    /// left out of validation messages, as AWS does.
    pub sensitive: bool,
    /// What the shape is, with its constraints.
    pub kind: Kind,
}

/// Inclusive bounds from the model's `min`/`max` traits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bounds {
    /// Smallest allowed length, size or value.
    pub min: Option<i64>,
    /// Largest allowed length, size or value.
    pub max: Option<i64>,
}

/// The kind of a shape, with the constraints the model gives it.
#[derive(Debug)]
pub enum Kind {
    /// A string; `enum_values` is empty unless the model gives an enum.
    String {
        /// Length bounds, in characters.
        len: Bounds,
        /// Java-flavoured pattern as written in the model (matched against the whole value).
        pattern: Option<&'static str>,
        /// Allowed values when the shape is an enum.
        enum_values: &'static [&'static str],
    },
    /// A 32-bit integer with its value range.
    Integer(Bounds),
    /// A 64-bit integer with its value range.
    Long(Bounds),
    /// A double-precision float.
    Double,
    /// A boolean.
    Boolean,
    /// A timestamp: epoch seconds in JSON, CBOR tag 1.
    Timestamp,
    /// Bytes: base64 in JSON, a byte string in CBOR; bounds on the decoded length.
    Blob(Bounds),
    /// A list with its member shape and size bounds.
    List {
        /// The member shape.
        member: ShapeId,
        /// Size bounds.
        len: Bounds,
    },
    /// A map with key and value shapes and size bounds.
    Map {
        /// The key shape.
        key: ShapeId,
        /// The value shape.
        value: ShapeId,
        /// Size bounds.
        len: Bounds,
    },
    /// A structure; `error` is set for exception shapes.
    Structure {
        /// Members in model order.
        members: &'static [Member],
        /// Set when the structure is an error shape.
        error: Option<ErrorInfo>,
    },
}

/// A structure member.
#[derive(Debug)]
pub struct Member {
    /// The member name exactly as on the wire, e.g. `CertificateArn`.
    pub name: &'static str,
    /// The member's shape.
    pub shape: ShapeId,
    /// Whether the model lists it as required.
    pub required: bool,
}

/// What the model says about an error shape.
#[derive(Debug, Clone, Copy)]
pub struct ErrorInfo {
    /// HTTP status: 400 for client errors, 500 for faults unless the model says otherwise.
    pub status: u16,
    /// True when the model marks the error a server fault.
    pub fault: bool,
}

impl Service {
    /// Finds an operation by its exact name.
    pub fn operation(&self, name: &str) -> Option<&'static Operation>
    where
        Self: 'static,
    {
        self.operations.binary_search_by(|op| op.name.cmp(name)).ok().map(|i| &self.operations[i])
    }

    /// The shape with this id.
    pub fn shape(&self, id: ShapeId) -> &Shape {
        &self.shapes[usize::from(id)]
    }

    /// Finds an error shape by its code (the shape name).
    pub fn error_shape(&self, code: &str) -> Option<&Shape> {
        self.shapes.iter().find(|s| s.name == code && matches!(s.kind, Kind::Structure { error: Some(_), .. }))
    }
}
