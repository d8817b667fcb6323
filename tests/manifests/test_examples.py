"""manifests/examples: the seeds' example, end to end, as a user applies it."""

from __future__ import annotations

import json

import yaml

from support import MANIFESTS, namespace_labels, one, sends

# SPEC, "The seeds' example".
SEED_OBJECTS = [
    {"objectName": "/test/parameter", "objectType": "ssmparameter"},
    {
        "objectName": "test/secret",
        "objectType": "secretsmanager",
        "jmesPath": [
            {"path": "username", "objectAlias": "SECRET_USERNAME"},
            {"path": "password", "objectAlias": "SECRET_PASSWORD"},
        ],
    },
]
REGION = "us-east-1"
ACCOUNT = "111122223333"


def test_pod_is_the_seeds_example(rendered):
    pod = one(rendered("examples"), "Pod")
    assert yaml.safe_load(pod["metadata"]["annotations"]["secrets-injector.io/objects"]) == SEED_OBJECTS
    assert pod["spec"]["serviceAccountName"] == "app"
    [container] = pod["spec"]["containers"]
    assert container["image"].startswith("nginx:")
    assert {"name": "AWS_REGION", "value": REGION} in container["env"]


def test_deployment_asks_for_the_same_objects(rendered):
    deployment = one(rendered("examples"), "Deployment")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert yaml.safe_load(annotations["secrets-injector.io/objects"]) == SEED_OBJECTS
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "app"


def test_everything_lands_in_an_opted_in_namespace_the_webhook_selects(rendered):
    docs = rendered("examples")
    namespace = one(docs, "Namespace")
    name = namespace["metadata"]["name"]
    assert {d["metadata"]["namespace"] for d in docs if d["kind"] != "Namespace"} == {name}
    labels = namespace_labels(name, namespace["metadata"]["labels"])
    for hook in one(rendered("base"), "MutatingWebhookConfiguration")["webhooks"]:
        assert sends(hook, labels, {})


def test_service_account_role_is_trusted_for_it(rendered):
    docs = rendered("examples")
    account = one(docs, "ServiceAccount")
    role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert role.startswith(f"arn:aws:iam::{ACCOUNT}:role/")
    trust = json.loads((MANIFESTS / "examples" / "iam-trust-policy.json").read_text())
    [statement] = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    conditions = statement["Condition"]["StringEquals"]
    subject = next(v for k, v in conditions.items() if k.endswith(":sub"))
    audience = next(v for k, v in conditions.items() if k.endswith(":aud"))
    assert subject == f"system:serviceaccount:{account['metadata']['namespace']}:{account['metadata']['name']}"
    assert audience == "sts.amazonaws.com"


def test_iam_policy_grants_exactly_what_the_injector_calls():
    # `webhook policy -f manifests/examples/pod.yaml --account ... --kms-key ...` writes this file
    # (webhook/tests/it/policy.rs checks that it still does).
    policy = json.loads((MANIFESTS / "examples" / "iam-policy.json").read_text())
    assert policy["Version"] == "2012-10-17"
    grants = {}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            grants[action] = statement
    # The example has no ssmparameterpath object, so no ssm:GetParametersByPath.
    assert set(grants) == {
        "ssm:GetParameters",
        "secretsmanager:GetSecretValue",
        "kms:Decrypt",
    }
    # The seeds' objects, by ARN: the parameter, and the secret with its random suffix.
    assert grants["ssm:GetParameters"]["Resource"] == [f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/test/parameter"]
    assert grants["secretsmanager:GetSecretValue"]["Resource"] == [
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:test/secret-??????"
    ]
    kms = grants["kms:Decrypt"]
    [key] = kms["Resource"]
    assert key.startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")
    assert sorted(kms["Condition"]["StringEquals"]["kms:ViaService"]) == [
        f"secretsmanager.{REGION}.amazonaws.com",
        f"ssm.{REGION}.amazonaws.com",
    ]
    # Nothing broader than the objects: no wildcard actions or resources.
    for statement in policy["Statement"]:
        assert "*" not in json.dumps(statement["Action"])
        assert statement["Resource"] != "*"
