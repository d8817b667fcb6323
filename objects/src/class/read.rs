//! A class document read pruned, as it is parsed: only `metadata.name`, `namespace` and
//! `resourceVersion`, and `spec.provider`, `parameters` and whether `secretObjects` lists
//! anything are kept, each within its bound; everything else (labels, annotations,
//! `managedFields`, values of unknown parameters) is skipped by the parser without being built.
//! So a class of several megabytes (100,000 empty parameters are valid for the CRD) costs its
//! bounds in memory, not its size, both when the webhook lists classes from the API server and
//! when `webhook inject` reads them from documents.
//!
//! Reading never fails on the shape of what it reads (a field of the wrong type is a problem of
//! the class, named in its denial): one odd class must not fail a whole list from the API server.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{
    Class, KIND, MAX_NAME_BYTES, MAX_NAMED_UNKNOWN, MAX_PARAMETER_BYTES, MAX_PARAMETERS,
    MAX_UNKNOWN_NAME_BYTES, PARAMETERS,
};
use crate::annotations::MAX_OBJECTS_BYTES;

/// The longest `spec.provider` kept whole; a longer one (never `aws`) is kept cut, for messages.
const MAX_PROVIDER_BYTES: usize = 253;
/// The longest `metadata.resourceVersion` kept (the API server's are decimal numbers).
const MAX_RESOURCE_VERSION_BYTES: usize = 64;

impl<'de> de::Deserialize<'de> for Class {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(DocumentVisitor)
    }
}

/// A scalar as read: a string within its bound, the length of a longer one, or the kind of a
/// value that is not a string (read through and dropped).
enum Scalar {
    Text(String),
    TooLong(usize),
    Other(&'static str),
}

impl Scalar {
    /// Bytes of the string as written (0 when it is not a string).
    fn len(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::TooLong(len) => *len,
            Self::Other(_) => 0,
        }
    }

    fn text(self) -> Option<String> {
        match self {
            Self::Text(text) => Some(text),
            _ => None,
        }
    }
}

/// Reads any value as a [`Scalar`], keeping a string only up to `max` bytes.
struct ScalarSeed {
    max: usize,
}

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Scalar, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(if v.len() <= self.max {
            Scalar::Text(v.to_owned())
        } else {
            Scalar::TooLong(v.len())
        })
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scalar, E> {
        Ok(Scalar::Other("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Scalar, E> {
        Ok(Scalar::Other("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Scalar, E> {
        Ok(Scalar::Other("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Scalar, E> {
        Ok(Scalar::Other("a number"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other("empty"))
    }

    fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other("empty"))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Scalar, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
        drain_seq(seq)?;
        Ok(Scalar::Other("a list"))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
        drain_map(map)?;
        Ok(Scalar::Other("a mapping"))
    }
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<usize, A::Error> {
    let mut count = 0;
    while seq.next_element::<IgnoredAny>()?.is_some() {
        count += 1;
    }
    Ok(count)
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A map key read as the index of one of `fields` (`None` for any other key), without keeping
/// the key.
struct FieldSeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|field| *field == v))
    }
}

/// What reads a value that should be a mapping: its entries when it is one, else only the
/// kind of what it is (the value is read through).
trait MapReader<'de> {
    fn read<A: MapAccess<'de>>(&mut self, map: &mut A) -> Result<(), A::Error>;
    fn other(&mut self, _kind: &'static str) {}
}

/// Reads a value with a [`MapReader`], whatever its type.
struct Tolerant<R>(R);

impl<'de, R: MapReader<'de>> DeserializeSeed<'de> for Tolerant<R> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, R: MapReader<'de>> Visitor<'de> for Tolerant<R> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.0.read(&mut map)?;
        // What the reader left unread, if anything.
        drain_map(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, seq: A) -> Result<(), A::Error> {
        drain_seq(seq)?;
        self.0.other("a list");
        Ok(())
    }

    fn visit_str<E: de::Error>(mut self, _: &str) -> Result<(), E> {
        self.0.other("a string");
        Ok(())
    }

    fn visit_bool<E: de::Error>(mut self, _: bool) -> Result<(), E> {
        self.0.other("a boolean");
        Ok(())
    }

    fn visit_i64<E: de::Error>(mut self, _: i64) -> Result<(), E> {
        self.0.other("a number");
        Ok(())
    }

    fn visit_u64<E: de::Error>(mut self, _: u64) -> Result<(), E> {
        self.0.other("a number");
        Ok(())
    }

    fn visit_f64<E: de::Error>(mut self, _: f64) -> Result<(), E> {
        self.0.other("a number");
        Ok(())
    }

    fn visit_unit<E: de::Error>(mut self) -> Result<(), E> {
        self.0.other("empty");
        Ok(())
    }

    fn visit_none<E: de::Error>(mut self) -> Result<(), E> {
        self.0.other("empty");
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Whether a value lists something (`spec.secretObjects`): `false` for null and an empty list,
/// `true` for anything else; its contents are read through.
struct PresenceSeed;

impl<'de> DeserializeSeed<'de> for PresenceSeed {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PresenceSeed {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_none<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        Ok(drain_seq(seq)? > 0)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        drain_map(map)?;
        Ok(true)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(true)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(true)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(true)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(true)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(true)
    }
}

/// A key of `spec.parameters`: its length, the known parameter it is, or (when unknown) its
/// start, for warnings.
struct ParameterKey {
    len: usize,
    known: Option<&'static str>,
    /// An unknown name, cut after [`MAX_UNKNOWN_NAME_BYTES`] (at a character boundary, with
    /// "…").
    start: String,
}

struct ParameterKeySeed;

impl<'de> DeserializeSeed<'de> for ParameterKeySeed {
    type Value = ParameterKey;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ParameterKey, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for ParameterKeySeed {
    type Value = ParameterKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a parameter name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ParameterKey, E> {
        let known = PARAMETERS.iter().copied().find(|known| *known == v);
        let start = if known.is_some() {
            String::new()
        } else {
            let mut cut = v.len().min(MAX_UNKNOWN_NAME_BYTES);
            while !v.is_char_boundary(cut) {
                cut -= 1;
            }
            if cut < v.len() {
                format!("{}…", &v[..cut])
            } else {
                v.to_owned()
            }
        };
        Ok(ParameterKey {
            len: v.len(),
            known,
            start,
        })
    }
}

struct DocumentVisitor;

const DOCUMENT_FIELDS: &[&str] = &["metadata", "spec"];
const METADATA_FIELDS: &[&str] = &["name", "namespace", "resourceVersion"];
const SPEC_FIELDS: &[&str] = &["provider", "secretObjects", "parameters"];

impl<'de> Visitor<'de> for DocumentVisitor {
    type Value = Class;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {KIND}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Class, A::Error> {
        let mut class = Class::empty();
        while let Some(field) = map.next_key_seed(FieldSeed(DOCUMENT_FIELDS))? {
            match field {
                Some(0) => map.next_value_seed(Tolerant(Metadata(&mut class)))?,
                // A spec that is not a mapping has no provider: the class is not AWS's.
                Some(_) => map.next_value_seed(Tolerant(Spec(&mut class)))?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(class)
    }
}

struct Metadata<'a>(&'a mut Class);

impl<'de> MapReader<'de> for Metadata<'_> {
    fn read<A: MapAccess<'de>>(&mut self, map: &mut A) -> Result<(), A::Error> {
        let class = &mut *self.0;
        while let Some(field) = map.next_key_seed(FieldSeed(METADATA_FIELDS))? {
            let max = match field {
                Some(2) => MAX_RESOURCE_VERSION_BYTES,
                _ => MAX_NAME_BYTES,
            };
            let text = || ScalarSeed { max };
            match field {
                Some(0) => class.name = map.next_value_seed(text())?.text().unwrap_or_default(),
                Some(1) => class.namespace = map.next_value_seed(text())?.text(),
                Some(_) => class.resource_version = map.next_value_seed(text())?.text(),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct Spec<'a>(&'a mut Class);

impl<'de> MapReader<'de> for Spec<'_> {
    fn read<A: MapAccess<'de>>(&mut self, map: &mut A) -> Result<(), A::Error> {
        let class = &mut *self.0;
        while let Some(field) = map.next_key_seed(FieldSeed(SPEC_FIELDS))? {
            match field {
                Some(0) => {
                    let provider = map.next_value_seed(ScalarSeed {
                        max: MAX_PROVIDER_BYTES,
                    })?;
                    class.provider = match provider {
                        Scalar::Text(text) => Some(text),
                        Scalar::TooLong(len) => Some(format!("a name of {len} bytes")),
                        Scalar::Other(_) => None,
                    };
                }
                Some(1) => class.secret_objects = map.next_value_seed(PresenceSeed)?,
                Some(_) => {
                    let mut parameters = Parameters::default();
                    map.next_value_seed(Tolerant(&mut parameters))?;
                    parameters.finish(class);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `spec.parameters` as it is read: the first [`MAX_PARAMETERS`] entries are looked at, the
/// rest only counted and measured.
#[derive(Default)]
struct Parameters {
    kept: BTreeMap<String, String>,
    unknown: Vec<String>,
    unknown_count: usize,
    count: usize,
    bytes: usize,
    problems: Vec<String>,
    /// What `spec.parameters` is when it is not a mapping.
    other: Option<&'static str>,
}

impl<'de> MapReader<'de> for &mut Parameters {
    fn read<A: MapAccess<'de>>(&mut self, map: &mut A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(ParameterKeySeed)? {
            self.count += 1;
            self.bytes = self.bytes.saturating_add(key.len);
            let measure = ScalarSeed { max: 0 };
            if self.count > MAX_PARAMETERS {
                // Past the bound nothing is looked at: measured and dropped.
                let value = map.next_value_seed(measure)?;
                self.bytes = self.bytes.saturating_add(value.len());
                continue;
            }
            if key.len > MAX_PARAMETER_BYTES {
                self.problems.push(format!(
                    "spec.parameters has a name of {} bytes; parameter names are short, such as \
                     objects or region",
                    key.len
                ));
                let value = map.next_value_seed(measure)?;
                self.bytes = self.bytes.saturating_add(value.len());
                continue;
            }
            let (name, limit) = match key.known {
                Some("objects") => ("objects", MAX_OBJECTS_BYTES),
                Some(known) => (known, MAX_PARAMETER_BYTES),
                // An unknown parameter's value is never used: only its name, for a warning.
                None => (key.start.as_str(), 0),
            };
            let value = map.next_value_seed(ScalarSeed { max: limit })?;
            self.bytes = self.bytes.saturating_add(value.len());
            match value {
                Scalar::Other(kind) => self.problems.push(format!(
                    "spec.parameters.{name} is {kind}, not a string; every parameter of a {KIND} \
                     is a string (quote it, or write objects as a YAML block: objects: |)"
                )),
                Scalar::TooLong(len) if key.known.is_some() => self.problems.push(format!(
                    "spec.parameters.{name} is {len} bytes, over the limit of {limit} bytes; \
                     split the objects across classes, or fetch many parameters at once with \
                     objectType: ssmparameterpath"
                )),
                Scalar::Text(text) if key.known.is_some() => {
                    self.kept.insert(name.to_owned(), text);
                }
                Scalar::Text(_) | Scalar::TooLong(_) => {
                    self.unknown_count += 1;
                    if self.unknown.len() < MAX_NAMED_UNKNOWN {
                        self.unknown.push(key.start);
                    }
                }
            }
        }
        Ok(())
    }

    fn other(&mut self, kind: &'static str) {
        self.other = Some(kind);
    }
}

impl Parameters {
    fn finish(self, class: &mut Class) {
        class.parameter_bytes = class.parameter_bytes.saturating_add(self.bytes);
        match self.other {
            None | Some("empty") => {}
            Some(kind) => {
                class.problems.push(format!(
                    "spec.parameters is {kind}, not a mapping of strings"
                ));
                return;
            }
        }
        if self.count > MAX_PARAMETERS {
            class.problems.push(format!(
                "spec.parameters has {} entries, more than the {MAX_PARAMETERS} read; keep only \
                 the parameters the AWS provider reads ({})",
                self.count,
                PARAMETERS.join(", ")
            ));
            return;
        }
        class.parameters.extend(self.kept);
        class.unknown.extend(self.unknown);
        class.unknown_count += self.unknown_count;
        class.problems.extend(self.problems);
    }
}
