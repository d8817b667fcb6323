//! A pod read from its JSON with only the fields the mutation looks at: the name, the annotations
//! under the webhook's prefix, the security contexts, `shareProcessNamespace` and `restartPolicy`
//! (the refresh rules), the name of each volume (and its `csi`), each container's name, command,
//! mounts, security context, `restartPolicy` (a native sidecar's), the env entries the init container would copy (`AWS_*` and the proxy variables, which
//! include the region) and the names of the other env entries, likewise for ephemeral containers
//! (for their mounts), and the webhook's volumes and init containers whole (they are compared
//! field by field). Images, probes, ports, labels, managed fields, other
//! annotations and the rest are skipped without being built, which is most of a real pod.
//!
//! The result is the same JSON tree with those fields missing, so the mutation reads it as
//! they read a whole pod, and list positions (which the patch addresses) are unchanged. A pod not
//! shaped as the API writes pods is read whole instead.

use std::fmt;
use std::marker::PhantomData;

use std::borrow::Cow;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use secrets_injector_objects::annotations::{
    BIN_VOLUME_NAME, INJECT, OBJECTS, PREFIX, SECRET_PROVIDER_CLASS, STATUS, VOLUME_NAME,
};

use crate::owned;
use crate::pod;

/// `T` read only from a JSON object: serde's derived structs also accept an array of their
/// fields in order, which the API never writes and the mutation would not read as a pod.
struct JsonObject<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for JsonObject<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for Fields<T> {
            type Value = JsonObject<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<JsonObject<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(JsonObject)
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
///
/// `SPECS` reads the spec even when the annotations do not ask for objects.
pub struct Pod<'a, const SPECS: bool = false>(PodFields<'a>);

impl<'de, const SPECS: bool> Deserialize<'de> for Pod<'de, SPECS> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        JsonObject::<Fields<'de, SPECS>>::deserialize(deserializer)
            .map(|JsonObject(Fields(fields))| Pod(fields))
    }
}

struct PodFields<'a> {
    metadata: Option<Metadata>,
    spec: Option<Spec<'a>>,
}

/// The pod's fields, read by `PodVisitor::<SPECS>`.
struct Fields<'a, const SPECS: bool>(PodFields<'a>);

impl<'de, const SPECS: bool> Deserialize<'de> for Fields<'de, SPECS> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(PodVisitor::<SPECS>)
            .map(Fields)
    }
}

/// Reads `metadata` and `spec`. The API writes `metadata` first: when its annotations already say
/// the pod does not ask for objects, the spec is skipped unbuilt, as the mutation will not look
/// at it.
struct PodVisitor<const SPECS: bool>;

impl<'de, const SPECS: bool> Visitor<'de> for PodVisitor<SPECS> {
    type Value = PodFields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a pod")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PodFields<'de>, A::Error> {
        let mut metadata: Option<Option<Metadata>> = None;
        let mut spec: Option<Option<Spec<'de>>> = None;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "metadata" if metadata.is_some() => {
                    return Err(de::Error::duplicate_field("metadata"));
                }
                "metadata" => {
                    let read: Option<JsonObject<Metadata>> = map.next_value()?;
                    metadata = Some(read.map(|JsonObject(m)| m));
                }
                "spec" if spec.is_some() => return Err(de::Error::duplicate_field("spec")),
                "spec" if !SPECS && metadata.as_ref().is_some_and(|m| !asks(m.as_ref())) => {
                    map.next_value::<IgnoredAny>()?;
                    spec = Some(None);
                }
                "spec" => {
                    let read: Option<JsonObject<Spec<'de>>> = map.next_value()?;
                    spec = Some(read.map(|JsonObject(s)| s));
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(PodFields {
            metadata: metadata.flatten(),
            spec: spec.flatten(),
        })
    }
}

/// `pod::asks` (or `pod::injected`: the volumes the webhook rewrote before) on the annotations
/// read so far.
fn asks(metadata: Option<&Metadata>) -> bool {
    let annotation = |name: &str| metadata?.annotations.as_ref()?.0.get(name)?.as_str();
    pod::asks(annotation(OBJECTS), annotation(INJECT))
        || pod::asks(annotation(SECRET_PROVIDER_CLASS), annotation(INJECT))
        || pod::injected(annotation(STATUS), annotation(INJECT))
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
    #[serde(default)]
    share_process_namespace: Option<Value>,
    #[serde(default)]
    restart_policy: Option<Value>,
    #[serde(default)]
    volumes: Option<Vec<Volume>>,
    #[serde(default)]
    containers: Option<Vec<JsonObject<Container>>>,
    #[serde(default, borrow)]
    init_containers: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    ephemeral_containers: Option<Vec<JsonObject<Container>>>,
}

/// What to keep of a list entry, from its `name`.
enum Keep {
    Whole,
    /// The name and these fields.
    NameAnd(&'static [&'static str]),
}

/// Reads one entry of a list of named objects (volumes, env variables) in one pass, deciding from
/// its name what to build. The API writes `name` first; the rest of an entry not kept is skipped
/// unbuilt. A second `name` is an error, so the pod is read whole and the last one wins as it
/// does there.
fn read_named<'de, A: MapAccess<'de>>(
    mut map: A,
    keep: fn(Option<&str>) -> Keep,
) -> Result<Option<Value>, A::Error> {
    let mut fields = Map::new();
    let mut first = true;
    while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
        if first && key == "name" {
            let name: Value = map.next_value()?;
            match keep(name.as_str()) {
                Keep::Whole => {
                    fields.insert("name".to_owned(), name);
                }
                decided => {
                    let wanted: &[&str] = match decided {
                        Keep::NameAnd(fields) => fields,
                        _ => &[],
                    };
                    let mut kept = Map::new();
                    while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                        if key == "name" {
                            return Err(de::Error::duplicate_field("name"));
                        }
                        if wanted.contains(&key.as_ref()) {
                            let value: Value = map.next_value()?;
                            put(&mut kept, &key, Some(value).filter(|v| !v.is_null()));
                        } else {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                    return Ok(match decided {
                        Keep::NameAnd(_) => {
                            let mut named = Map::from_iter([("name".to_owned(), name)]);
                            named.extend(kept);
                            Some(Value::Object(named))
                        }
                        _ => None,
                    });
                }
            }
        } else {
            let value: Value = map.next_value()?;
            fields.insert(key.into_owned(), value);
        }
        first = false;
    }
    // `name` was not first (or is missing): decide on the whole entry.
    Ok(match keep(fields.get("name").and_then(Value::as_str)) {
        Keep::Whole => Some(Value::Object(fields)),
        Keep::NameAnd(wanted) => {
            let mut named = Map::new();
            put(&mut named, "name", fields.remove("name"));
            for field in wanted {
                put(
                    &mut named,
                    field,
                    fields.remove(*field).filter(|v| !v.is_null()),
                );
            }
            Some(Value::Object(named))
        }
    })
}

/// A `Deserialize` for an entry type holding what `read_named` keeps of it.
macro_rules! named_entry {
    ($name:ident, $keep:expr, $what:literal) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Entry;

                impl<'de> Visitor<'de> for Entry {
                    type Value = $name;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }

                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<$name, A::Error> {
                        read_named(map, $keep).map($name)
                    }
                }

                deserializer.deserialize_map(Entry)
            }
        }
    };
}

/// A volume: its name and `csi` (the CSI volumes the webhook may rewrite), or the whole of the
/// webhook's own (compared field by field).
struct Volume(Option<Value>);

named_entry!(
    Volume,
    |name| match name {
        Some(VOLUME_NAME | BIN_VOLUME_NAME) => Keep::Whole,
        _ => Keep::NameAnd(&["csi"]),
    },
    "a volume"
);

/// An env entry the init container could copy, whole; the name alone of the others (the
/// `env-containers` clash warnings read it).
struct EnvEntry(Option<Value>);

named_entry!(
    EnvEntry,
    |name| match name {
        Some(name) if !pod::is_copied_env(name) => Keep::NameAnd(&[]),
        _ => Keep::Whole,
    },
    "an env variable"
);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    #[serde(default)]
    name: Option<Value>,
    #[serde(default)]
    command: Option<Value>,
    #[serde(default)]
    env: Option<Vec<EnvEntry>>,
    #[serde(default)]
    volume_mounts: Option<Value>,
    #[serde(default)]
    security_context: Option<Value>,
    /// `Always` on an init container makes it a native sidecar.
    #[serde(default)]
    restart_policy: Option<Value>,
}

/// The pod as JSON, pruned to what the mutation reads; the whole pod when it is not shaped as the
/// API writes pods (the mutation then decides on all of it). `Err` only for text that is not JSON.
pub fn read(object: &RawValue) -> serde_json::Result<Value> {
    read_with::<false>(object)
}

/// [`read`], with the spec read even when the annotations do not ask for objects (`SPECS`: CSI
/// volumes may be rewritten in any pod).
pub fn read_with<const SPECS: bool>(object: &RawValue) -> serde_json::Result<Value> {
    match serde_json::from_str::<Pod<'_, SPECS>>(object.get()) {
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

impl<const SPECS: bool> Pod<'_, SPECS> {
    /// The pruned pod as JSON. `Err` only when a volume or init container kept raw is not JSON,
    /// which text that was read as JSON cannot be.
    pub fn into_value(self) -> serde_json::Result<Value> {
        let Pod(fields) = self;
        let mut pod = Map::new();
        if let Some(metadata) = fields.metadata {
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
        if let Some(spec) = fields.spec {
            let mut fields = Map::new();
            put(&mut fields, "os", spec.os);
            put(&mut fields, "securityContext", spec.security_context);
            put(
                &mut fields,
                "shareProcessNamespace",
                spec.share_process_namespace,
            );
            put(&mut fields, "restartPolicy", spec.restart_policy);
            let volumes = spec
                .volumes
                .map(|list| list.into_iter().filter_map(|Volume(v)| v).collect());
            put(&mut fields, "volumes", volumes.map(Value::Array));
            put(&mut fields, "containers", container_list(spec.containers)?);
            let init = spec
                .init_containers
                .map(|list| list.into_iter().map(init_container).collect());
            put(
                &mut fields,
                "initContainers",
                init.transpose()?.map(Value::Array),
            );
            put(
                &mut fields,
                "ephemeralContainers",
                container_list(spec.ephemeral_containers)?,
            );
            pod.insert("spec".to_owned(), Value::Object(fields));
        }
        Ok(Value::Object(pod))
    }
}

/// A list of pruned containers as JSON (`None` when the pod has none).
fn container_list(list: Option<Vec<JsonObject<Container>>>) -> serde_json::Result<Option<Value>> {
    list.map(|list| {
        list.into_iter()
            .map(|JsonObject(c)| c.into_value())
            .collect()
    })
    .transpose()
    .map(|list| list.map(Value::Array))
}

/// An init container: pruned like the others, except the webhook's own (and those of rewritten
/// CSI volumes), which are read whole.
fn init_container(raw: &RawValue) -> serde_json::Result<Value> {
    let own = |name: Option<&str>| name.is_some_and(owned::is_init_container);
    match serde_json::from_str::<JsonObject<Container>>(raw.get()) {
        Ok(JsonObject(container)) if !own(container.name.as_ref().and_then(Value::as_str)) => {
            container.into_value()
        }
        _ => serde_json::from_str(raw.get()),
    }
}

impl Container {
    fn into_value(self) -> serde_json::Result<Value> {
        let mut fields = Map::new();
        put(&mut fields, "name", self.name);
        put(&mut fields, "command", self.command);
        put(
            &mut fields,
            "env",
            self.env
                .map(|list| Value::Array(list.into_iter().filter_map(|EnvEntry(e)| e).collect())),
        );
        put(&mut fields, "volumeMounts", self.volume_mounts);
        put(&mut fields, "securityContext", self.security_context);
        put(&mut fields, "restartPolicy", self.restart_policy);
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
                        {"value": "no name"}
                    ],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    "securityContext": {"runAsUser": 1000},
                    "livenessProbe": {"httpGet": {"path": "/", "port": 80}}
                }],
                "ephemeralContainers": [{"name": "debug", "image": "busybox", "stdin": true,
                    "volumeMounts": [{"name": "secrets-injector", "mountPath": "/s"}]}],
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
                        {"name": "setup", "command": ["true"]},
                        {"name": "secrets-injector", "image": "injector", "args": ["--region", "x"]}
                    ],
                    "containers": [{
                        "name": "app",
                        "env": [
                            {"name": "APP_MODE"},
                            {"name": "AWS_REGION", "value": "eu-west-1"},
                            {"name": "DB_PASSWORD"},
                            {"name": "https_proxy", "value": "http://proxy:3128"},
                            {"value": "no name"}
                        ],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        "securityContext": {"runAsUser": 1000}
                    }],
                    "ephemeralContainers": [{"name": "debug",
                        "volumeMounts": [{"name": "secrets-injector", "mountPath": "/s"}]}]
                }
            })
        );
    }

    #[test]
    fn the_spec_of_a_pod_not_asking_is_skipped_when_metadata_comes_first() {
        let spec =
            json!({"containers": [{"name": "app", "env": [{"name": "AWS_REGION", "value": "x"}]}]});
        for annotations in [
            json!({"other": "x"}),
            json!({"secrets-injector.io/objects": "  "}),
            json!({"secrets-injector.io/objects": "- objectName: /a\n", "secrets-injector.io/inject": "false"}),
        ] {
            let pod = json!({"metadata": {"annotations": annotations}, "spec": spec});
            assert!(pruned(&pod).get("spec").is_none(), "{annotations}");
        }
        let asking = json!({"metadata": {"annotations": {"secrets-injector.io/objects": "- objectName: /a\n"}}, "spec": spec});
        assert_eq!(pruned(&asking)["spec"], spec);
        // Metadata after the spec (not the API's order): the spec is read.
        let text = r#"{"spec":{"containers":[{"name":"app"}]},"metadata":{}}"#;
        let raw: Box<RawValue> = serde_json::from_str(text).unwrap();
        assert_eq!(
            read(&raw).unwrap()["spec"],
            json!({"containers": [{"name": "app"}]})
        );
    }

    #[test]
    fn a_name_given_twice_reads_the_pod_whole_where_the_last_one_wins() {
        let text = r#"{"spec":{"containers":[{"name":"app","env":[
            {"name":"APP_MODE","value":"x","name":"AWS_REGION"},
            {"value":"eu-west-1","name":"AWS_REGION"}]}]}}"#;
        let raw: Box<RawValue> = serde_json::from_str(text).unwrap();
        let whole: Value = serde_json::from_str(text).unwrap();
        assert_eq!(read(&raw).unwrap(), whole);
        assert_eq!(
            whole["spec"]["containers"][0]["env"][0]["name"],
            "AWS_REGION"
        );
    }

    #[test]
    fn nulls_read_as_absent_and_odd_shapes_are_read_whole() {
        let asking = json!({"secrets-injector.io/objects": "- objectName: /a\n"});
        assert_eq!(
            pruned(&json!({"metadata": {"annotations": asking, "name": null},
                           "spec": {"containers": null, "volumes": null}})),
            json!({"metadata": {"annotations": asking}, "spec": {}})
        );
        let raw: Box<RawValue> =
            serde_json::from_str(r#"{"spec": {"containers": null}, "metadata": null}"#).unwrap();
        assert_eq!(read(&raw).unwrap(), json!({"spec": {}}));
        for odd in [
            json!({"metadata": "x", "spec": {}}),
            json!({"spec": {"containers": {"name": "app"}}}),
            json!({"spec": {"containers": ["app"]}}),
            json!({"spec": []}),
            json!({"spec": {"containers": [[]]}}),
            json!({"spec": {"containers": [{"name": "app", "env": ["odd"]}]}}),
            json!({"spec": {"volumes": [{"name": "a"}, 7]}}),
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
