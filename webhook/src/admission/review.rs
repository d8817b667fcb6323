//! The `admission.k8s.io/v1` AdmissionReview as the webhook reads and writes it. The request is
//! read once, borrowing from the body, and only as far as the webhook needs: the object stays raw
//! JSON until a decision needs more of it, so a pod that does not ask for objects costs one scan.
//! The answer is written straight from its fields.

use std::borrow::Cow;

use std::fmt;

use base64::Engine;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use secrets_injector_objects::annotations::INIT_CONTAINER_NAME;

use crate::pod::pruned::{self, Key};

/// The only version the webhook speaks (the MutatingWebhookConfiguration asks for it alone).
pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

/// The operation being admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    /// As the API writes it (`CREATE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Connect => "CONNECT",
        }
    }
}

/// `group`, `version`, `kind` of the object, all required as in the API.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Kind<'a> {
    #[serde(borrow)]
    pub group: Cow<'a, str>,
    #[serde(borrow)]
    pub version: Cow<'a, str>,
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
}

/// The object of a request.
#[derive(Debug)]
pub enum Object<'a> {
    /// A pod being created, already read as `pruned::read` reads it (the API server sends
    /// `kind` and `operation` before `object`, so the pod is read in the same pass as the review).
    Pod(Value),
    /// Any other object, or a pod whose review named its kind after it: raw JSON, read when a
    /// decision needs it.
    Raw(&'a RawValue),
}

/// What the webhook reads of `request`. The fields the API always sends (`uid`, `kind`,
/// `resource`, `operation`, `userInfo`) are required, so a body that is not a real review is
/// refused rather than half-read.
#[derive(Debug)]
pub struct Request<'a> {
    pub uid: Cow<'a, str>,
    pub kind: Kind<'a>,
    pub sub_resource: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
    pub namespace: Option<Cow<'a, str>>,
    pub operation: Operation,
    /// `None` when absent or null (DELETE, CONNECT).
    pub object: Option<Object<'a>>,
    /// `oldObject` (UPDATE), raw: only a pod UPDATE reads it, for `injector_images`.
    pub old_object: Option<&'a RawValue>,
}

impl Request<'_> {
    /// Whether this is the creation of a pod (not of one of its subresources).
    pub fn creates_pod(&self) -> bool {
        self.kind.group.is_empty()
            && self.kind.kind == "Pod"
            && self.operation == Operation::Create
            && self.sub_resource.is_none()
    }
}

/// `request`, read by a hand-written visitor so the object can be read pruned in the same pass
/// when the fields before it say it is a pod being created. `PRUNED = false` keeps every object
/// raw: the second try, for reviews whose pod is not shaped as the API writes pods.
struct RequestFields<'a, const PRUNED: bool, const SPECS: bool>(Request<'a>);

impl<'de: 'a, 'a, const PRUNED: bool, const SPECS: bool> Deserialize<'de>
    for RequestFields<'a, PRUNED, SPECS>
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(RequestVisitor::<PRUNED, SPECS>)
            .map(RequestFields)
    }
}

struct RequestVisitor<const PRUNED: bool, const SPECS: bool>;

/// Fills a field once; a second key of the same name is an error, as in serde's derived code.
fn once<T, E: de::Error>(slot: &mut Option<T>, field: &'static str, value: T) -> Result<(), E> {
    if slot.replace(value).is_some() {
        return Err(E::duplicate_field(field));
    }
    Ok(())
}

impl<'de, const PRUNED: bool, const SPECS: bool> Visitor<'de> for RequestVisitor<PRUNED, SPECS> {
    type Value = Request<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AdmissionRequest object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Request<'de>, A::Error> {
        let mut uid = None;
        let mut kind: Option<Kind<'de>> = None;
        let mut resource = None;
        let mut sub_resource = None;
        let mut name = None;
        let mut namespace = None;
        let mut operation = None;
        let mut user_info = None;
        let mut object: Option<Option<Object<'de>>> = None;
        let mut old_object: Option<Option<&'de RawValue>> = None;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "uid" => once(&mut uid, "uid", map.next_value::<Cow<'de, str>>()?)?,
                "kind" => once(&mut kind, "kind", map.next_value()?)?,
                "resource" => once(&mut resource, "resource", map.next_value::<Resource>()?)?,
                "subResource" => once(&mut sub_resource, "subResource", map.next_value()?)?,
                "name" => once(&mut name, "name", map.next_value()?)?,
                "namespace" => once(&mut namespace, "namespace", map.next_value()?)?,
                "operation" => once(&mut operation, "operation", map.next_value::<Operation>()?)?,
                "userInfo" => once(&mut user_info, "userInfo", map.next_value::<IgnoredAny>()?)?,
                "object" => {
                    let pod_create = PRUNED
                        && kind
                            .as_ref()
                            .is_some_and(|k| k.group.is_empty() && k.kind == "Pod")
                        && operation == Some(Operation::Create);
                    let value = if pod_create {
                        map.next_value::<Option<pruned::Pod<'de, SPECS>>>()?
                            .map(|pod| pod.into_value().map(Object::Pod))
                            .transpose()
                            .map_err(de::Error::custom)?
                    } else {
                        map.next_value::<Option<&'de RawValue>>()?.map(Object::Raw)
                    };
                    once(&mut object, "object", value)?;
                }
                "oldObject" => once(&mut old_object, "oldObject", map.next_value()?)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let missing = |field| <A::Error as de::Error>::missing_field(field);
        resource.ok_or_else(|| missing("resource"))?;
        user_info.ok_or_else(|| missing("userInfo"))?;
        Ok(Request {
            uid: uid.ok_or_else(|| missing("uid"))?,
            kind: kind.ok_or_else(|| missing("kind"))?,
            sub_resource: sub_resource.flatten(),
            name: name.flatten(),
            namespace: namespace.flatten(),
            operation: operation.ok_or_else(|| missing("operation"))?,
            object: object.flatten(),
            old_object: old_object.flatten(),
        })
    }
}

/// The name and image of each of the webhook's init containers (`secrets-injector`, or a name
/// starting with it), in pod order: all a pod UPDATE is checked for.
pub type InjectorImages<'a> = Vec<(Cow<'a, str>, Option<Cow<'a, str>>)>;

/// Reads the images of the webhook's init containers from a pod (`object` or `oldObject` of an
/// UPDATE), skipping the rest of it unbuilt.
pub fn injector_images(pod: &RawValue) -> serde_json::Result<InjectorImages<'_>> {
    #[derive(Deserialize)]
    struct Pod<'a> {
        #[serde(default, borrow)]
        spec: Option<Spec<'a>>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Spec<'a> {
        #[serde(default, borrow)]
        init_containers: Option<Vec<Container<'a>>>,
    }
    #[derive(Deserialize)]
    struct Container<'a> {
        #[serde(default, borrow)]
        name: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        image: Option<Cow<'a, str>>,
    }
    let pod: Pod<'_> = serde_json::from_str(pod.get())?;
    Ok(pod
        .spec
        .and_then(|spec| spec.init_containers)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| Some((c.name?, c.image)))
        .filter(|(name, _)| name.starts_with(INIT_CONTAINER_NAME))
        .collect())
}

/// `group`, `version`, `resource`: required by the API, not read by the webhook.
#[derive(Debug, Deserialize)]
struct Resource {
    #[serde(rename = "group")]
    _group: IgnoredAny,
    #[serde(rename = "version")]
    _version: IgnoredAny,
    #[serde(rename = "resource")]
    _resource: IgnoredAny,
}

/// The review around the request.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review<'a, const PRUNED: bool, const SPECS: bool> {
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    api_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    request: Option<RequestFields<'a, PRUNED, SPECS>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeOnly<'a> {
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    api_version: Option<Cow<'a, str>>,
}

/// Why a body is not a review the webhook answers (the server's HTTP 400). Its text is short and
/// never quotes the body; positions are `(line, column)` as serde_json counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not UTF-8 from this position.
    NotUtf8 { line: usize, column: usize },
    /// Not JSON at this position.
    NotJson { line: usize, column: usize },
    /// JSON, but not an object with string `kind` and `apiVersion`.
    NotTyped { line: usize, column: usize },
    /// Another kind, or another version of AdmissionReview.
    OtherType,
    /// An `admission.k8s.io/v1` AdmissionReview whose fields are not as the API writes them.
    NotAReview { line: usize, column: usize },
    /// An AdmissionReview without `request`.
    NoRequest,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotUtf8 { line, column } => write!(
                f,
                "request body is not valid JSON: not UTF-8 (line {line}, column {column})"
            ),
            Self::NotJson { line, column } => write!(
                f,
                "request body is not valid JSON (line {line}, column {column})"
            ),
            Self::NotTyped { line, column } => write!(
                f,
                "request body is not a JSON object with kind and apiVersion (line {line}, column {column})"
            ),
            Self::OtherType => write!(
                f,
                "expected kind AdmissionReview of apiVersion {API_VERSION}"
            ),
            Self::NotAReview { line, column } => write!(
                f,
                "request body is not a valid AdmissionReview (line {line}, column {column})"
            ),
            Self::NoRequest => f.write_str("the AdmissionReview has no request"),
        }
    }
}

/// Parses an AdmissionReview of `admission.k8s.io/v1` and takes its request.
pub fn parse(body: &[u8]) -> Result<Request<'_>, Refusal> {
    parse_with(body, false)
}

/// `parse`; with `specs`, a pod's spec is read even when its annotations do not ask for
/// objects (`--csi-volumes=rewrite` looks at the volumes of every pod).
pub fn parse_with(body: &[u8], specs: bool) -> Result<Request<'_>, Refusal> {
    // JSON is UTF-8 throughout; serde_json checks only the strings it keeps, and the webhook
    // skips most of a review.
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(e) => return Err(not_utf8(&body[..e.valid_up_to()])),
    };
    // The common case parses once. A pod not shaped as the API writes pods is read again with
    // its object kept raw (the mutation then decides on it as it is), and only a body that still
    // fails is read for its type, so a review of another version is named as such rather than
    // failing on whichever field differs.
    let read = |text| {
        if specs {
            read_review::<true, true>(text)
        } else {
            read_review::<true, false>(text)
        }
    };
    let review = match read(text).or_else(|_| read_review::<false, false>(text)) {
        Ok(review) => review,
        Err(full) => {
            let types: TypeOnly<'_> = serde_json::from_slice(body).map_err(|e| {
                let (line, column) = (e.line(), e.column());
                match e.classify() {
                    serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                        Refusal::NotJson { line, column }
                    }
                    _ => Refusal::NotTyped { line, column },
                }
            })?;
            check_types(types.kind.as_deref(), types.api_version.as_deref())?;
            return Err(Refusal::NotAReview {
                line: full.line(),
                column: full.column(),
            });
        }
    };
    check_types(review.kind.as_deref(), review.api_version.as_deref())?;
    review.request.ok_or(Refusal::NoRequest)
}

/// How much of a body [`peek_uid`] reads. The API server writes `request.uid` first, after the
/// review's `kind` and `apiVersion`: within the first hundred bytes.
pub const PEEK_BYTES: usize = 4096;

/// The request's `uid`, read from the first [`PEEK_BYTES`] of a body and nothing after it: what
/// a review the webhook has no thread for is answered with, read on the async runtime (so its
/// cost must not grow with the body). `None` when the uid is not there.
pub fn peek_uid(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(PEEK_BYTES)];
    let mut uid = None;
    // Stops with an error as soon as the uid is read: the rest is not needed (and is cut off).
    let _ = de::DeserializeSeed::deserialize(
        PeekReview(&mut uid),
        &mut serde_json::Deserializer::from_slice(head),
    );
    uid
}

/// The review's fields, skipped but for `request`.
struct PeekReview<'s>(&'s mut Option<String>);

/// The request's fields, skipped until `uid`.
struct PeekRequest<'s>(&'s mut Option<String>);

impl<'de> de::DeserializeSeed<'de> for PeekReview<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PeekReview<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AdmissionReview object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if key == "request" {
                return map.next_value_seed(PeekRequest(self.0));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

impl<'de> de::DeserializeSeed<'de> for PeekRequest<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PeekRequest<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AdmissionRequest object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if key == "uid" {
                *self.0 = Some(map.next_value::<Cow<'de, str>>()?.into_owned());
                return Err(de::Error::custom("the uid is read"));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

/// Where the body stops being UTF-8, as serde_json would say it.
fn not_utf8(valid: &[u8]) -> Refusal {
    let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = valid.len() - valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
    Refusal::NotUtf8 { line, column }
}

/// The review's type and its request.
struct Read<'a> {
    kind: Option<Cow<'a, str>>,
    api_version: Option<Cow<'a, str>>,
    request: Option<Request<'a>>,
}

fn read_review<const PRUNED: bool, const SPECS: bool>(text: &str) -> serde_json::Result<Read<'_>> {
    let review: Review<'_, PRUNED, SPECS> = serde_json::from_str(text)?;
    Ok(Read {
        kind: review.kind,
        api_version: review.api_version,
        request: review.request.map(|RequestFields(request)| request),
    })
}

fn check_types(kind: Option<&str>, api_version: Option<&str>) -> Result<(), Refusal> {
    if kind != Some(KIND) || api_version != Some(API_VERSION) {
        return Err(Refusal::OtherType);
    }
    Ok(())
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub uid: String,
    pub allowed: bool,
    /// Why the request was denied (`None` when allowed).
    pub denial: Option<Denial>,
    /// The JSONPatch, serialized; `None` when there is nothing to change.
    pub patch: Option<Vec<u8>>,
    pub warnings: Vec<String>,
}

/// The `status` of a denied request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

impl Response {
    /// Allowed, unchanged.
    pub fn allow(uid: &str) -> Self {
        Self {
            uid: uid.to_owned(),
            allowed: true,
            denial: None,
            patch: None,
            warnings: Vec::new(),
        }
    }

    /// Denied with HTTP-like code 400: the object is what is wrong.
    pub fn deny(uid: &str, message: impl Into<String>) -> Self {
        Self {
            uid: uid.to_owned(),
            allowed: false,
            denial: Some(Denial {
                code: 400,
                reason: "BadRequest",
                message: message.into(),
            }),
            patch: None,
            warnings: Vec::new(),
        }
    }

    /// Denied with HTTP-like code 429: not the object's fault, the webhook had no room for the
    /// review; the same request later may be admitted.
    pub fn busy(uid: &str, message: impl Into<String>) -> Self {
        Self {
            uid: uid.to_owned(),
            allowed: false,
            denial: Some(Denial {
                code: 429,
                reason: "TooManyRequests",
                message: message.into(),
            }),
            patch: None,
            warnings: Vec::new(),
        }
    }

    /// Denied: the review alone would hold more memory than the webhook gives all reviews.
    pub fn too_costly(uid: &str, message: impl Into<String>) -> Self {
        Self {
            uid: uid.to_owned(),
            allowed: false,
            denial: Some(Denial {
                code: 413,
                reason: "RequestEntityTooLarge",
                message: message.into(),
            }),
            patch: None,
            warnings: Vec::new(),
        }
    }

    /// The whole AdmissionReview to send back. The patch goes out as base64, the API's encoding
    /// of `[]byte`, written straight into the body: base64 needs no JSON escaping, and the patch
    /// is most of the answer.
    pub fn to_review_json(&self) -> Vec<u8> {
        let encoded = self.patch.as_deref().map(|patch| {
            base64::encoded_len(patch.len(), true).expect("a patch of a few KiB fits in memory")
        });
        let size = encoded.unwrap_or(0)
            + self.denial.as_ref().map_or(0, |d| d.message.len())
            + self.warnings.iter().map(String::len).sum::<usize>()
            + 256;
        let mut body = Vec::with_capacity(size);
        body.extend_from_slice(br#"{"apiVersion":"#);
        json(&mut body, API_VERSION);
        body.extend_from_slice(br#","kind":"#);
        json(&mut body, KIND);
        body.extend_from_slice(br#","response":{"uid":"#);
        json(&mut body, &self.uid);
        body.extend_from_slice(if self.allowed {
            br#","allowed":true"#
        } else {
            br#","allowed":false"#
        });
        if let Some(denial) = &self.denial {
            body.extend_from_slice(br#","status":"#);
            json(
                &mut body,
                &StatusOut {
                    status: "Failure",
                    code: denial.code,
                    reason: denial.reason,
                    message: &denial.message,
                },
            );
        }
        if let (Some(patch), Some(encoded)) = (self.patch.as_deref(), encoded) {
            body.extend_from_slice(br#","patchType":"JSONPatch","patch":""#);
            let start = body.len();
            body.resize(start + encoded, 0);
            base64::engine::general_purpose::STANDARD
                .encode_slice(patch, &mut body[start..])
                .expect("sized by encoded_len");
            body.push(b'"');
        }
        if !self.warnings.is_empty() {
            body.extend_from_slice(br#","warnings":"#);
            json(&mut body, &self.warnings);
        }
        body.extend_from_slice(b"}}");
        body
    }
}

/// Appends one JSON value to the body being built.
fn json<T: Serialize + ?Sized>(body: &mut Vec<u8>, value: &T) {
    // Writing to memory cannot fail, and these values (strings, numbers) always serialize.
    serde_json::to_writer(body, value).expect("an in-memory JSON value always serializes");
}

#[derive(Serialize)]
struct StatusOut<'a> {
    status: &'a str,
    code: u16,
    reason: &'a str,
    message: &'a str,
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn review(request: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": API_VERSION,
            "kind": KIND,
            "request": request,
        }))
        .unwrap()
    }

    #[test]
    fn the_request_is_read_with_the_fields_the_webhook_needs() {
        let body = review(json!({
            "uid": "abc-123",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "subResource": "status",
            "name": "web",
            "namespace": "apps",
            "operation": "CREATE",
            "userInfo": {"username": "admin"},
            "object": {"metadata": {"name": "web"}},
            "oldObject": null,
            "dryRun": false
        }));
        let request = parse(&body).unwrap();
        assert_eq!(request.uid, "abc-123");
        assert_eq!(request.kind.kind, "Pod");
        assert_eq!(request.kind.group, "");
        assert_eq!(request.sub_resource.as_deref(), Some("status"));
        assert_eq!(request.name.as_deref(), Some("web"));
        assert_eq!(request.namespace.as_deref(), Some("apps"));
        assert_eq!(request.operation, Operation::Create);
        assert!(!request.creates_pod(), "a subresource is not the pod");
        // `json!` sorts keys, so `object` came before `operation`: kept raw.
        match request.object {
            Some(Object::Raw(raw)) => assert_eq!(raw.get(), r#"{"metadata":{"name":"web"}}"#),
            other => panic!("{other:?}"),
        }
    }

    /// A request as text, its fields in the given order.
    fn ordered(fields: &[(&str, &str)]) -> Vec<u8> {
        let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{{}}}}}"#,
            fields.join(",")
        )
        .into_bytes()
    }

    const POD: &str = r#"{"metadata":{"name":"web","labels":{"a":"b"},"annotations":{"secrets-injector.io/objects":"- objectName: /a"}},"spec":{"containers":[{"name":"app","image":"nginx"}]}}"#;
    const POD_KIND: (&str, &str) = ("kind", r#"{"group":"","version":"v1","kind":"Pod"}"#);
    const PODS: (&str, &str) = (
        "resource",
        r#"{"group":"","version":"v1","resource":"pods"}"#,
    );
    const USER_INFO: (&str, &str) = ("userInfo", "{}");
    const REQUEST_UID: (&str, &str) = ("uid", r#""u""#);

    #[test]
    fn only_a_pod_being_created_is_read_pruned_in_the_same_pass() {
        let pruned = json!({
            "metadata": {"name": "web", "annotations": {"secrets-injector.io/objects": "- objectName: /a"}},
            "spec": {"containers": [{"name": "app"}]}
        });
        let create = ordered(&[
            REQUEST_UID,
            POD_KIND,
            PODS,
            ("operation", r#""CREATE""#),
            USER_INFO,
            ("object", POD),
        ]);
        let request = parse(&create).unwrap();
        assert!(request.creates_pod());
        assert!(matches!(&request.object, Some(Object::Pod(pod)) if *pod == pruned));

        let update = ordered(&[
            REQUEST_UID,
            POD_KIND,
            PODS,
            ("operation", r#""UPDATE""#),
            USER_INFO,
            ("object", POD),
        ]);
        assert!(
            matches!(parse(&update).unwrap().object, Some(Object::Raw(raw)) if raw.get() == POD)
        );

        // Kind named after the object (not how the API server writes it): kept raw.
        let late = ordered(&[
            REQUEST_UID,
            ("object", POD),
            PODS,
            ("operation", r#""CREATE""#),
            USER_INFO,
            POD_KIND,
        ]);
        let request = parse(&late).unwrap();
        assert!(request.creates_pod());
        assert!(matches!(request.object, Some(Object::Raw(raw)) if raw.get() == POD));

        // A pod not shaped as the API writes pods: read again, kept raw, decided on as it is.
        let odd = r#"{"metadata":{"annotations":{"secrets-injector.io/objects":"- objectName: /a"}},"spec":[]}"#;
        let body = ordered(&[
            REQUEST_UID,
            POD_KIND,
            PODS,
            ("operation", r#""CREATE""#),
            USER_INFO,
            ("object", odd),
        ]);
        assert!(matches!(parse(&body).unwrap().object, Some(Object::Raw(raw)) if raw.get() == odd));
    }

    #[test]
    fn a_pod_update_reads_the_injector_images_of_both_objects() {
        let old = r#"{"metadata":{"name":"web"},"spec":{"initContainers":[{"name":"setup","image":"busybox"},{"name":"secrets-injector","image":"injector:1","args":["--region=us-east-1"]},{"name":"secrets-injector-2"},{"image":"nameless"}],"containers":[{"name":"app","image":"nginx"}]}}"#;
        let body = ordered(&[
            REQUEST_UID,
            POD_KIND,
            PODS,
            ("operation", r#""UPDATE""#),
            USER_INFO,
            ("object", POD),
            ("oldObject", old),
        ]);
        let request = parse(&body).unwrap();
        let old_object = request.old_object.expect("oldObject");
        assert_eq!(old_object.get(), old);
        assert_eq!(
            injector_images(old_object).unwrap(),
            [
                (
                    Cow::Borrowed("secrets-injector"),
                    Some(Cow::Borrowed("injector:1"))
                ),
                (Cow::Borrowed("secrets-injector-2"), None)
            ]
        );
        let Some(Object::Raw(object)) = request.object else {
            panic!("the object of an UPDATE stays raw");
        };
        assert_eq!(injector_images(object).unwrap(), []);
        let body = ordered(&[
            REQUEST_UID,
            POD_KIND,
            PODS,
            ("operation", r#""UPDATE""#),
            USER_INFO,
            ("object", POD),
            ("oldObject", POD),
            ("oldObject", POD),
        ]);
        assert!(parse(&body).is_err(), "oldObject given twice");
    }

    #[test]
    fn the_uid_is_peeked_from_the_start_of_a_body_only() {
        let pod = format!(
            r#"{{"spec":{{"containers":[{}]}}}}"#,
            "{},".repeat(20_000) + "{}"
        );
        let body = ordered(&[
            REQUEST_UID,
            POD_KIND,
            PODS,
            ("operation", r#""CREATE""#),
            USER_INFO,
            ("object", &pod),
        ]);
        assert!(body.len() > 10 * PEEK_BYTES);
        assert_eq!(peek_uid(&body).as_deref(), Some("u"));
        // Escapes are read as JSON reads them.
        let escaped = ordered(&[("uid", r#""a\"b\u00e9""#), POD_KIND]);
        assert_eq!(peek_uid(&escaped).as_deref(), Some("a\"b\u{e9}"));
        // A uid after the first PEEK_BYTES is not looked for.
        let late = ordered(&[POD_KIND, ("object", &pod), REQUEST_UID]);
        assert_eq!(peek_uid(&late), None);
        for other in [&b"{not json"[..], b"[]", b"{}", br#"{"request":{"uid":5}}"#] {
            assert_eq!(peek_uid(other), None, "{}", String::from_utf8_lossy(other));
        }
        let busy: Value =
            serde_json::from_slice(&Response::busy("u", "busy").to_review_json()).unwrap();
        assert_eq!(
            busy["response"],
            json!({"uid": "u", "allowed": false, "status": {
                "status": "Failure", "code": 429, "reason": "TooManyRequests", "message": "busy"
            }})
        );
    }

    #[test]
    fn a_field_given_twice_is_refused() {
        let body = ordered(&[
            REQUEST_UID,
            POD_KIND,
            PODS,
            ("operation", r#""CREATE""#),
            USER_INFO,
            REQUEST_UID,
        ]);
        let reason = parse(&body).unwrap_err().to_string();
        assert!(
            reason.starts_with("request body is not a valid AdmissionReview"),
            "{reason}"
        );
    }

    /// A pod request with only the fields the API always sends.
    fn minimal(operation: &str) -> Value {
        json!({
            "uid": "u",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": operation,
            "userInfo": {}
        })
    }

    #[test]
    fn a_null_object_is_no_object() {
        let mut request = minimal("DELETE");
        request["object"] = Value::Null;
        assert!(parse(&review(request)).unwrap().object.is_none());
    }

    #[test]
    fn fields_the_api_always_sends_are_required() {
        let complete = minimal("CREATE");
        assert!(parse(&review(complete.clone())).is_ok());
        for field in ["uid", "kind", "resource", "operation", "userInfo"] {
            let mut request = complete.clone();
            request.as_object_mut().unwrap().remove(field);
            let reason = parse(&review(request)).unwrap_err().to_string();
            assert!(
                reason.starts_with("request body is not a valid AdmissionReview"),
                "without {field}: {reason}"
            );
        }
        let mut request = complete;
        request["operation"] = json!("PATCH");
        assert!(parse(&review(request)).is_err());
    }

    #[test]
    fn answers_are_written_as_the_api_reads_them() {
        let mut mutated = Response::allow("abc-123");
        mutated.patch =
            Some(br#"[{"op":"add","path":"/metadata/labels","value":{"a":"b"}}]"#.to_vec());
        mutated.warnings = vec!["a warning".to_owned()];
        let body: Value = serde_json::from_slice(&mutated.to_review_json()).unwrap();
        let patch = base64::engine::general_purpose::STANDARD
            .decode(body["response"]["patch"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&patch).unwrap(),
            json!([{"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}])
        );
        assert_eq!(
            body,
            json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {
                    "uid": "abc-123",
                    "allowed": true,
                    "patchType": "JSONPatch",
                    "patch": body["response"]["patch"],
                    "warnings": ["a warning"]
                }
            })
        );

        let allowed: Value =
            serde_json::from_slice(&Response::allow("u").to_review_json()).unwrap();
        assert_eq!(
            allowed,
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                   "response": {"uid": "u", "allowed": true}})
        );

        let denied: Value =
            serde_json::from_slice(&Response::deny("u", "it \"is\" wrong").to_review_json())
                .unwrap();
        assert_eq!(
            denied["response"],
            json!({"uid": "u", "allowed": false, "status": {
                "status": "Failure", "code": 400, "reason": "BadRequest", "message": "it \"is\" wrong"
            }})
        );
    }

    #[test]
    fn bodies_that_are_not_admission_reviews_get_a_short_reason() {
        let reason = |body: &str| parse(body.as_bytes()).unwrap_err().to_string();
        assert_eq!(
            reason("{not json"),
            "request body is not valid JSON (line 1, column 2)"
        );
        assert_eq!(
            reason("[1, 2]"),
            "request body is not a JSON object with kind and apiVersion (line 1, column 2)"
        );
        assert_eq!(
            reason(r#"{"kind":"Pod","apiVersion":"v1"}"#),
            "expected kind AdmissionReview of apiVersion admission.k8s.io/v1"
        );
        assert_eq!(
            reason(
                r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1beta1","request":{}}"#
            ),
            "expected kind AdmissionReview of apiVersion admission.k8s.io/v1"
        );
        assert_eq!(
            reason(r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{}}"#),
            "request body is not a valid AdmissionReview (line 1, column 73)"
        );
        assert_eq!(
            reason(r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#),
            "the AdmissionReview has no request"
        );
        let not_utf8 = parse(b"{\"kind\":\n \"A\xffB\"}").unwrap_err().to_string();
        assert_eq!(
            not_utf8,
            "request body is not valid JSON: not UTF-8 (line 2, column 4)"
        );
        // serde_json's own messages can quote a value; the reason never does.
        let secret = "s3cr3t-value";
        let body = format!(
            r#"{{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{{"uid":["{secret}"]}}}}"#
        );
        let reason = reason(&body);
        assert!(!reason.contains(secret), "{reason}");
    }
}
