//! Policy documents as IAM JSON, or as Terraform `aws_iam_policy_document` data sources.
//!
//! JSON: `Action` is one string (one action per statement); `Resource` and condition values are
//! always arrays, so a script reads them one way. One document is printed bare; two are one
//! object `{"podRole": DOC, "assumedRole": DOC}`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::statements::{Document, POLICY_VERSION, Statement};

/// Which role a document is for: its JSON key and its Terraform name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The pod's own role (IRSA).
    Pod,
    /// The role the injector assumes (`assume-role-arn`).
    Assumed,
}

impl Role {
    fn terraform_name(self, trust: bool) -> &'static str {
        match (self, trust) {
            (Self::Pod, false) => "pod_role",
            (Self::Assumed, false) => "assumed_role",
            (Self::Pod, true) => "pod_role_trust",
            (Self::Assumed, true) => "assumed_role_trust",
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct JsonDocument<'a> {
    version: &'static str,
    statement: Vec<JsonStatement<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct JsonStatement<'a> {
    sid: &'a str,
    effect: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal: Option<BTreeMap<&'a str, &'a str>>,
    action: &'static str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    resource: &'a [String],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    condition: BTreeMap<&'a str, BTreeMap<&'a str, &'a [String]>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Labelled<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pod_role: Option<JsonDocument<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assumed_role: Option<JsonDocument<'a>>,
}

fn json_document(document: &Document) -> JsonDocument<'_> {
    JsonDocument {
        version: POLICY_VERSION,
        statement: document.statements.iter().map(json_statement).collect(),
    }
}

fn json_statement(statement: &Statement) -> JsonStatement<'_> {
    let mut condition: BTreeMap<&str, BTreeMap<&str, &[String]>> = BTreeMap::new();
    for c in &statement.conditions {
        condition
            .entry(c.test)
            .or_default()
            .insert(&c.variable, &c.values);
    }
    JsonStatement {
        sid: &statement.sid,
        effect: "Allow",
        principal: statement
            .principal
            .as_ref()
            .map(|p| BTreeMap::from([(p.kind, p.identifier.as_str())])),
        action: statement.action.iam(),
        resource: &statement.resources,
        condition,
    }
}

/// One document bare, or several labelled by role; pretty-printed, ending with a newline.
pub fn json(documents: &[(Role, Document)]) -> String {
    let mut text = match documents {
        [(_, document)] => serde_json::to_string_pretty(&json_document(document)),
        _ => {
            let find = |role| {
                documents
                    .iter()
                    .find(|(r, _)| *r == role)
                    .map(|(_, d)| json_document(d))
            };
            serde_json::to_string_pretty(&Labelled {
                pod_role: find(Role::Pod),
                assumed_role: find(Role::Assumed),
            })
        }
    }
    .unwrap_or_default();
    text.push('\n');
    text
}

/// A string as an HCL literal: quotes and backslashes escaped, and `${`/`%{` kept literal.
fn hcl_string(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .replace("${", "$${")
        .replace("%{", "%%{");
    format!("\"{escaped}\"")
}

/// A list of strings: inline when it has one item, else one item a line.
fn hcl_list(items: &[String], indent: &str) -> String {
    match items {
        [one] => format!("[{}]", hcl_string(one)),
        _ => {
            let mut text = "[\n".to_owned();
            for item in items {
                let _ = writeln!(text, "{indent}  {},", hcl_string(item));
            }
            text.push_str(indent);
            text.push(']');
            text
        }
    }
}

/// `data "aws_iam_policy_document" "NAME" { statement { ... } }` for each document, named
/// `pod_role`/`assumed_role` (`..._trust` for trust policies).
pub fn terraform(documents: &[(Role, Document)], trust: bool) -> String {
    let mut text = String::new();
    for (i, (role, document)) in documents.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        let _ = writeln!(
            text,
            "data \"aws_iam_policy_document\" \"{}\" {{",
            role.terraform_name(trust)
        );
        for (j, statement) in document.statements.iter().enumerate() {
            if j > 0 {
                text.push('\n');
            }
            terraform_statement(&mut text, statement);
        }
        text.push_str("}\n");
    }
    text
}

fn terraform_statement(text: &mut String, statement: &Statement) {
    let indent = "    ";
    text.push_str("  statement {\n");
    let _ = writeln!(text, "{indent}sid       = {}", hcl_string(&statement.sid));
    let _ = writeln!(text, "{indent}effect    = \"Allow\"");
    let _ = writeln!(
        text,
        "{indent}actions   = [{}]",
        hcl_string(statement.action.iam())
    );
    if !statement.resources.is_empty() {
        let _ = writeln!(
            text,
            "{indent}resources = {}",
            hcl_list(&statement.resources, indent)
        );
    }
    if let Some(principal) = &statement.principal {
        let _ = write!(
            text,
            "\n{indent}principals {{\n{indent}  type        = {}\n{indent}  identifiers = [{}]\n{indent}}}\n",
            hcl_string(principal.kind),
            hcl_string(&principal.identifier)
        );
    }
    for condition in &statement.conditions {
        let inner = format!("{indent}  ");
        let _ = write!(
            text,
            "\n{indent}condition {{\n{inner}test     = {}\n{inner}variable = {}\n{inner}values   = {}\n{indent}}}\n",
            hcl_string(condition.test),
            hcl_string(&condition.variable),
            hcl_list(&condition.values, &inner)
        );
    }
    text.push_str("  }\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::statements::{Action, Condition, Principal, chained_trust};

    fn fetch() -> Document {
        Document {
            statements: vec![
                Statement {
                    sid: "GetParametersUsEast1".to_owned(),
                    action: Action::GetParameters,
                    principal: None,
                    resources: vec!["arn:aws:ssm:us-east-1:111122223333:parameter/a".to_owned()],
                    conditions: Vec::new(),
                },
                Statement {
                    sid: "DecryptUsEast1".to_owned(),
                    action: Action::Decrypt,
                    principal: None,
                    resources: vec![
                        "arn:aws:kms:us-east-1:111122223333:key/k1".to_owned(),
                        "arn:aws:kms:us-east-1:111122223333:key/k2".to_owned(),
                    ],
                    conditions: vec![Condition {
                        test: "StringEquals",
                        variable: "kms:ViaService".to_owned(),
                        values: vec!["ssm.us-east-1.amazonaws.com".to_owned()],
                    }],
                },
            ],
        }
    }

    #[test]
    fn one_document_is_printed_bare() {
        let text = json(&[(Role::Pod, fetch())]);
        assert_eq!(
            text,
            r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "GetParametersUsEast1",
      "Effect": "Allow",
      "Action": "ssm:GetParameters",
      "Resource": [
        "arn:aws:ssm:us-east-1:111122223333:parameter/a"
      ]
    },
    {
      "Sid": "DecryptUsEast1",
      "Effect": "Allow",
      "Action": "kms:Decrypt",
      "Resource": [
        "arn:aws:kms:us-east-1:111122223333:key/k1",
        "arn:aws:kms:us-east-1:111122223333:key/k2"
      ],
      "Condition": {
        "StringEquals": {
          "kms:ViaService": [
            "ssm.us-east-1.amazonaws.com"
          ]
        }
      }
    }
  ]
}
"#
        );
    }

    #[test]
    fn two_documents_are_labelled() {
        let trust = chained_trust("arn:aws:iam::111122223333:role/app", None);
        let text = json(&[(Role::Pod, fetch()), (Role::Assumed, trust)]);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value["podRole"]["Statement"][0]["Sid"],
            "GetParametersUsEast1"
        );
        assert_eq!(
            value["assumedRole"]["Statement"][0]["Principal"]["AWS"],
            "arn:aws:iam::111122223333:role/app"
        );
        assert!(
            value["assumedRole"]["Statement"][0]
                .get("Resource")
                .is_none()
        );
        assert!(
            value["assumedRole"]["Statement"][0]
                .get("Condition")
                .is_none()
        );
        assert!(text.find("podRole") < text.find("assumedRole"));
    }

    #[test]
    fn terraform_data_sources() {
        let text = terraform(&[(Role::Pod, fetch())], false);
        assert_eq!(
            text,
            r#"data "aws_iam_policy_document" "pod_role" {
  statement {
    sid       = "GetParametersUsEast1"
    effect    = "Allow"
    actions   = ["ssm:GetParameters"]
    resources = ["arn:aws:ssm:us-east-1:111122223333:parameter/a"]
  }

  statement {
    sid       = "DecryptUsEast1"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [
      "arn:aws:kms:us-east-1:111122223333:key/k1",
      "arn:aws:kms:us-east-1:111122223333:key/k2",
    ]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ssm.us-east-1.amazonaws.com"]
    }
  }
}
"#
        );
    }

    #[test]
    fn terraform_trust_has_principals_and_two_blocks() {
        let mut trust = chained_trust("arn:aws:iam::111122223333:role/app", Some("id"));
        trust.statements[0].principal = Some(Principal {
            kind: "AWS",
            identifier: "arn:aws:iam::111122223333:role/app".to_owned(),
        });
        let text = terraform(&[(Role::Pod, fetch()), (Role::Assumed, trust)], true);
        assert!(text.contains("data \"aws_iam_policy_document\" \"pod_role_trust\" {"));
        assert!(text.contains(
            "data \"aws_iam_policy_document\" \"assumed_role_trust\" {\n  statement {\n    sid       = \"PodRoleAssumes\"\n    effect    = \"Allow\"\n    actions   = [\"sts:AssumeRole\"]\n\n    principals {\n      type        = \"AWS\"\n      identifiers = [\"arn:aws:iam::111122223333:role/app\"]\n    }\n\n    condition {\n      test     = \"StringEquals\"\n      variable = \"sts:ExternalId\"\n      values   = [\"id\"]\n    }\n  }\n}\n"
        ), "{text}");
    }

    #[test]
    fn hcl_strings_are_escaped() {
        assert_eq!(hcl_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(hcl_string("${x}%{y}"), r#""$${x}%%{y}""#);
    }
}
