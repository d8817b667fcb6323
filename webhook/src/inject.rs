//! `webhook inject`: the webhook's mutation applied to manifests offline (for GitOps, review and
//! debugging), like `istioctl kube-inject`. Pods get the patch; workloads get the patch their pod
//! template would get; everything else is printed unchanged.

use serde_json::Value;

use crate::admission::template_location;
use std::sync::Arc;

use crate::mutation::{Classes, Context, Decision, DocumentClasses, MutationConfig, mutate_in};
use crate::{Error, Result};

/// Reads YAML or JSON documents (`---` separated), and returns them as YAML, in the same order,
/// with every pod and pod template mutated. A pod template the webhook would deny is an error
/// naming the document and giving the admission message.
pub fn run(input: &str, cfg: &MutationConfig) -> Result<String> {
    let mut documents = read_documents(input)?;
    // The SecretProviderClasses of the input are the classes its pods see: no cluster needed.
    let (classes, problems) = DocumentClasses::from_documents(&documents);
    if let Some(problem) = problems.into_iter().next() {
        return Err(Error::Input(problem));
    }
    let mut cfg = cfg.clone();
    cfg.classes = Classes(Arc::new(classes));
    let cfg = &cfg;
    for_each_pod(&mut documents, &mut |pod, name, field| {
        apply(pod, cfg, name, field)
    })?;
    serde_saphyr::to_string_multiple(&documents)
        .map_err(|e| Error::Output(format!("the result cannot be written as YAML: {e}")))
}

/// The YAML or JSON documents (`---` separated) of `webhook inject` and `webhook policy`.
pub fn read_documents(input: &str) -> Result<Vec<Value>> {
    serde_saphyr::from_multiple(input)
        .map_err(|e| Error::Input(format!("the input is not YAML or JSON: {e}")))
}

/// What is called for every pod and pod template: the pod (or template), how messages name its
/// document, and the template's field (`spec.template`) or `None` for a pod.
pub type Visit<'a> = dyn FnMut(&mut Value, &str, Option<&str>) -> Result<()> + 'a;

/// Calls `visit` on every pod and workload pod template of `documents` (inside `List`s too), in
/// order, stopping at the first error.
pub fn for_each_pod(documents: &mut [Value], visit: &mut Visit<'_>) -> Result<()> {
    for (index, document) in documents.iter_mut().enumerate() {
        let label = format!("document {}", index + 1);
        visit_document(document, &label, visit)?;
    }
    Ok(())
}

/// `Deployment web` for messages; the kind alone when the name is missing.
fn describe(document: &Value) -> String {
    let kind = document
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("object");
    match document.pointer("/metadata/name").and_then(Value::as_str) {
        Some(name) => format!("{kind} {name}"),
        None => kind.to_owned(),
    }
}

fn visit_document(document: &mut Value, label: &str, visit: &mut Visit<'_>) -> Result<()> {
    let kind = document.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = document
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    let name = format!("{} ({label})", describe(document));
    if kind == "List" || kind.ends_with("List") {
        if let Some(items) = document.get_mut("items").and_then(Value::as_array_mut) {
            for (index, item) in items.iter_mut().enumerate() {
                visit_document(item, &format!("{label}, items[{index}]"), visit)?;
            }
        }
        return Ok(());
    }
    if (group, kind) == ("", "Pod") {
        return visit(document, &name, None);
    }
    let Some((pointer, field)) = template_location(group, kind) else {
        return Ok(());
    };
    match document.pointer_mut(pointer) {
        Some(template) => visit(template, &name, Some(field)),
        None => Ok(()),
    }
}

/// Mutates one pod or pod template in place.
fn apply(pod: &mut Value, cfg: &MutationConfig, name: &str, field: Option<&str>) -> Result<()> {
    let prefix = field.map(|f| format!("{f}: ")).unwrap_or_default();
    let ctx = Context {
        namespace: None,
        template: field.is_some(),
    };
    match mutate_in(pod, &ctx, cfg) {
        Decision::Skip => Ok(()),
        Decision::Deny(message) => Err(Error::Denied {
            document: name.to_owned(),
            message: format!("{prefix}{message}"),
        }),
        Decision::Patch { patch, warnings } => {
            // On standard error, one a line, as kubectl shows an answer's warnings.
            for warning in warnings {
                eprintln!("Warning: {name}: {prefix}{warning}");
            }
            json_patch::patch(pod, &patch).map_err(|e| Error::Denied {
                document: name.to_owned(),
                message: format!("{prefix}the patch does not apply: {e}"),
            })
        }
    }
}
