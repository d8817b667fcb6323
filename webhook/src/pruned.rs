//! A pod read from its JSON with only the fields the mutation looks at: the name, the annotations
//! under the webhook's prefix, the security contexts, the name of each volume, each container's
//! name, mounts, security context and the env entries the init container would copy (`AWS_*` and
//! the proxy variables, which include the region), and the webhook's own volume and init
//! container whole (they are compared field by field). Images, probes, ports, labels, managed fields, other
//! annotations and the rest are skipped without being built, which is most of a real pod.
//!
//! The result is the same JSON tree with those fields missing, so `plan` and `patch` read it as
//! they read a whole pod, and list positions (which the patch addresses) are unchanged. A pod not
//! shaped as the API writes pods is read whole instead.

use std::fmt;
use std::marker::PhantomData;

use std::borrow::Cow;

use serde::de::value::MapAccessDeserializer;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use secrets_injector_objects::annotations::{PREFIX, VOLUME_NAME};

use crate::pod;

/// `T` read only from a JSON object: serde's derived structs also accept an array of their
/// fields in order, which the API never writes and the mutation would not read as a pod.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for Fields<T> {
            type Value = Object<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Object)
            }
        }

        deserializer.deserialize_map(Fields(PhantomData))
    }
}

/// The annotations under the webhook's prefix (the only ones it reads); the map itself stays, as
/// the patch adds to it when it is there.
struct OwnAnnotations(Map<String, Value>);

impl<'de> Deserialize<'de> for OwnAnnotations {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;

        impl<'de> Visitor<'de> for Entries {
            type Value = OwnAnnotations;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OwnAnnotations, A::Error> {
                let mut own = Map::new();
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    if key.starts_with(PREFIX) {
                        own.insert(key.into_owned(), map.next_value()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(OwnAnnotations(own))
            }
        }

        deserializer.deserialize_map(Entries)
    }
}

/// A map key, borrowed from the text when it has no escapes.
pub(crate) struct Key<'a>(pub(crate) Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;

        impl<'de> Visitor<'de> for Text {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(text)))
            }

            fn visit_str<E>(self, text: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(text.to_owned())))
            }
        }

        deserializer.deserialize_str(Text)
    }
}

/// The fields of a pod the mutation reads; `into_value` gives them as JSON. Read only from a JSON
/// object.
pub struct Pod<'a>(PodFields<'a>);

impl<'de> Deserialize<'de> for Pod<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Object::<PodFields<'de>>::deserialize(deserializer).map(|Object(fields)| Pod(fields))
    }
}

#[derive(Deserialize)]
struct PodFields<'a> {
    #[serde(default)]
    metadata: Option<Object<Metadata>>,
    #[serde(default, borrow)]
    spec: Option<Object<Spec<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    #[serde(default)]
    name: Option<Value>,
    #[serde(default)]
    generate_name: Option<Value>,
    #[serde(default)]
    annotations: Option<OwnAnnotations>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec<'a> {
    #[serde(default)]
    os: Option<Value>,
    #[serde(default)]
    security_context: Option<Value>,
    /// Raw, so only the webhook's own is built whole.
    #[serde(default, borrow)]
    volumes: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow)]
    containers: Option<Vec<Object<Container<'a>>>>,
    #[serde(default, borrow)]
    init_containers: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct Named {
    #[serde(default)]
    name: Option<Value>,
}

#[derive(Deserialize)]
struct EnvName<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Container<'a> {
    #[serde(default)]
    name: Option<Value>,
    /// Raw, so only the entries that matter are built.
    #[serde(default, borrow)]
    env: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    volume_mounts: Option<Value>,
    #[serde(default)]
    security_context: Option<Value>,
}

/// The pod as JSON, pruned to what the mutation reads; the whole pod when it is not shaped as the
/// API writes pods (the mutation then decides on all of it). `Err` only for text that is not JSON.
pub fn read(object: &RawValue) -> serde_json::Result<Value> {
    match serde_json::from_str::<Pod<'_>>(object.get()) {
        Ok(pod) => pod.into_value(),
        Err(_) => serde_json::from_str(object.get()),
    }
}

/// Adds `key` when the field was there and not null (the mutation treats null as absent).
fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), value);
    }
}

impl Pod<'_> {
    /// The pruned pod as JSON. `Err` only when a volume or init container kept raw is not JSON,
    /// which text that was read as JSON cannot be.
    pub fn into_value(self) -> serde_json::Result<Value> {
        let Pod(fields) = self;
        let mut pod = Map::new();
        if let Some(Object(metadata)) = fields.metadata {
            let mut fields = Map::new();
            put(&mut fields, "name", metadata.name);
            put(&mut fields, "generateName", metadata.generate_name);
            put(
                &mut fields,
                "annotations",
                metadata.annotations.map(|own| Value::Object(own.0)),
            );
            pod.insert("metadata".to_owned(), Value::Object(fields));
        }
        if let Some(Object(spec)) = fields.spec {
            let mut fields = Map::new();
            put(&mut fields, "os", spec.os);
            put(&mut fields, "securityContext", spec.security_context);
            let volumes = spec
                .volumes
                .map(|list| list.into_iter().map(volume).collect());
            put(
                &mut fields,
                "volumes",
                volumes.transpose()?.map(Value::Array),
            );
            put(
                &mut fields,
                "containers",
                spec.containers
                    .map(|list| list.into_iter().map(|Object(c)| c.into_value()).collect())
                    .transpose()?
                    .map(Value::Array),
            );
            let init = spec
                .init_containers
                .map(|list| list.into_iter().map(init_container).collect());
            put(
                &mut fields,
                "initContainers",
                init.transpose()?.map(Value::Array),
            );
            pod.insert("spec".to_owned(), Value::Object(fields));
        }
        Ok(Value::Object(pod))
    }
}

/// A volume: its name alone, or the whole of the webhook's own (or of one not shaped as a
/// volume, which the mutation reads as it is).
fn volume(raw: &RawValue) -> serde_json::Result<Value> {
    match serde_json::from_str::<Object<Named>>(raw.get()) {
        Ok(Object(Named { name }))
            if name.as_ref().and_then(Value::as_str) != Some(VOLUME_NAME) =>
        {
            let mut fields = Map::new();
            put(&mut fields, "name", name);
            Ok(Value::Object(fields))
        }
        _ => serde_json::from_str(raw.get()),
    }
}

/// An init container: pruned like the others, except the webhook's own, which is read whole.
fn init_container(raw: &RawValue) -> serde_json::Result<Value> {
    match serde_json::from_str::<Object<Container<'_>>>(raw.get()) {
        Ok(Object(container))
            if container.name.as_ref().and_then(Value::as_str) != Some(VOLUME_NAME) =>
        {
            container.into_value()
        }
        _ => serde_json::from_str(raw.get()),
    }
}

/// The env entries the init container could copy, in order; an entry not shaped as one is kept
/// as it is.
fn copied_env(list: Vec<&RawValue>) -> serde_json::Result<Value> {
    list.into_iter()
        .filter(
            |raw| match serde_json::from_str::<Object<EnvName<'_>>>(raw.get()) {
                Ok(Object(EnvName { name: Some(name) })) => pod::is_copied_env(&name),
                _ => true,
            },
        )
        .map(|raw| serde_json::from_str(raw.get()))
        .collect::<serde_json::Result<Vec<Value>>>()
        .map(Value::Array)
}

impl Container<'_> {
    fn into_value(self) -> serde_json::Result<Value> {
        let mut fields = Map::new();
        put(&mut fields, "name", self.name);
        put(&mut fields, "env", self.env.map(copied_env).transpose()?);
        put(&mut fields, "volumeMounts", self.volume_mounts);
        put(&mut fields, "securityContext", self.security_context);
        Ok(Value::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pruned(pod: &Value) -> Value {
        let text = serde_json::to_string(pod).unwrap();
        let raw: Box<RawValue> = serde_json::from_str(&text).unwrap();
        read(&raw).unwrap()
    }

    #[test]
    fn only_what_the_mutation_reads_is_kept() {
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": "web-7d9f-",
                "labels": {"app": "web"},
                "annotations": {
                    "secrets-injector.io/objects": "- objectName: /a\n",
                    "secrets-injector.io/regoin": 7,
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"big\": true}"
                },
                "managedFields": [{"manager": "kube-controller-manager"}]
            },
            "spec": {
                "os": {"name": "linux"},
                "securityContext": {"fsGroup": 2000},
                "volumes": [
                    {"name": "data", "emptyDir": {}},
                    {"name": "secrets-injector", "emptyDir": {"medium": "Memory"}},
                    {"emptyDir": {}}
                ],
                "initContainers": [
                    {"name": "setup", "image": "busybox", "command": ["true"]},
                    {"name": "secrets-injector", "image": "injector", "args": ["--region", "x"]}
                ],
                "containers": [{
                    "name": "app",
                    "image": "nginx",
                    "ports": [{"containerPort": 80}],
                    "env": [
                        {"name": "APP_MODE", "value": "prod"},
                        {"name": "AWS_REGION", "value": "eu-west-1"},
                        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "p"}}},
                        {"name": "https_proxy", "value": "http://proxy:3128"},
                        {"value": "no name"},
                        "odd"
                    ],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    "securityContext": {"runAsUser": 1000},
                    "livenessProbe": {"httpGet": {"path": "/", "port": 80}}
                }],
                "tolerations": [{"operator": "Exists"}],
                "nodeSelector": {"kubernetes.io/os": "linux"}
            }
        });
        assert_eq!(
            pruned(&pod),
            json!({
                "metadata": {
                    "generateName": "web-7d9f-",
                    "annotations": {
                        "secrets-injector.io/objects": "- objectName: /a\n",
                        "secrets-injector.io/regoin": 7
                    }
                },
                "spec": {
                    "os": {"name": "linux"},
                    "securityContext": {"fsGroup": 2000},
                    "volumes": [
                        {"name": "data"},
                        {"name": "secrets-injector", "emptyDir": {"medium": "Memory"}},
                        {}
                    ],
                    "initContainers": [
                        {"name": "setup"},
                        {"name": "secrets-injector", "image": "injector", "args": ["--region", "x"]}
                    ],
                    "containers": [{
                        "name": "app",
                        "env": [
                            {"name": "AWS_REGION", "value": "eu-west-1"},
                            {"name": "https_proxy", "value": "http://proxy:3128"},
                            {"value": "no name"},
                            "odd"
                        ],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        "securityContext": {"runAsUser": 1000}
                    }]
                }
            })
        );
    }

    #[test]
    fn nulls_read_as_absent_and_odd_shapes_are_read_whole() {
        assert_eq!(
            pruned(&json!({"metadata": null, "spec": {"containers": null, "volumes": null}})),
            json!({"spec": {}})
        );
        for odd in [
            json!({"metadata": "x", "spec": {}}),
            json!({"spec": {"containers": {"name": "app"}}}),
            json!({"spec": {"containers": ["app"]}}),
            json!({"spec": []}),
            json!({"spec": {"containers": [[]]}}),
            json!({"metadata": [], "spec": {}}),
            json!({"metadata": {"annotations": []}}),
            json!([1, 2]),
            json!([]),
        ] {
            assert_eq!(pruned(&odd), odd);
        }
        let raw: Box<RawValue> = serde_json::from_str(r#"{"spec": {}}"#).unwrap();
        assert!(read(&raw).is_ok());
    }
}
