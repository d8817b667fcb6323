"""AdmissionReview requests for the webhook benchmarks: a pod as an EKS API server hands it to a
mutating webhook at CREATE, after the ReplicaSet controller made it from a Deployment's template
and the API server defaulted it, with the EKS pod-identity webhook's IRSA variables, token volume
and mounts already in place.

usage: pods.py OBJECTS CONTAINERS > review.json   (the "realistic" pod: pods.py realistic)
"""

import json
import sys
import uuid

import benchlib

TOKEN_DIR = "/var/run/secrets/eks.amazonaws.com/serviceaccount"


def objects_annotation(count: int) -> str:
    """`count` objects, 80% parameters and 20% secrets (at least one parameter); every secret
    also extracts two JSON fields with jmesPath, as the seeds' example does."""
    secrets = count // 5
    params = count - secrets
    lines = []
    for i in range(1, params + 1):
        lines += [f'- objectName: "{benchlib.param_name(i)}"', '  objectType: "ssmparameter"']
    for i in range(1, secrets + 1):
        lines += [
            f'- objectName: "{benchlib.secret_name(i)}"',
            '  objectType: "secretsmanager"',
            "  jmesPath:",
            '    - path: "username"',
            f'      objectAlias: "DB_USERNAME_{i}"',
            '    - path: "password"',
            f'      objectAlias: "DB_PASSWORD_{i}"',
        ]
    return "\n".join(lines) + "\n"


def irsa_env():
    return [
        {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"},
        {"name": "AWS_DEFAULT_REGION", "value": benchlib.REGION},
        {"name": "AWS_REGION", "value": benchlib.REGION},
        {"name": "AWS_ROLE_ARN", "value": benchlib.ROLE_ARN},
        {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": f"{TOKEN_DIR}/token"},
    ]


def container(i: int) -> dict:
    name = "app" if i == 0 else f"sidecar-{i}"
    return {
        "name": name,
        "image": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout/{name}:1.42.{i}",
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": 8080 + i, "protocol": "TCP"}],
        "env": [
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "SPRING_PROFILES_ACTIVE", "value": "prod"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
            {"name": "JAVA_TOOL_OPTIONS", "value": "-XX:MaxRAMPercentage=75"},
        ] + irsa_env(),
        "resources": {"limits": {"memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "512Mi"}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080 + i, "scheme": "HTTP"}, "initialDelaySeconds": 10,
                          "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080 + i, "scheme": "HTTP"}, "periodSeconds": 5,
                           "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/checkout", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "kube-api-access-7xk2p", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True},
            {"name": "aws-iam-token", "mountPath": TOKEN_DIR, "readOnly": True},
        ],
    }


def pod(objects: int, containers: int) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "checkout-7d9f8c6b5d-",
            "namespace": "shop",
            "labels": {"app.kubernetes.io/name": "checkout", "app.kubernetes.io/instance": "checkout",
                       "app.kubernetes.io/version": "1.42.0", "pod-template-hash": "7d9f8c6b5d"},
            "annotations": {
                "secrets-injector.io/objects": objects_annotation(objects),
                "kubectl.kubernetes.io/restartedAt": "2026-11-20T09:12:44Z",
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9102",
            },
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "checkout-7d9f8c6b5d",
                                 "uid": "5a0c3e4e-6c3f-4d0c-9a53-0d7b1f1c2e11", "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        "spec": {
            "serviceAccountName": "checkout",
            "serviceAccount": "checkout",
            "automountServiceAccountToken": True,
            "containers": [container(i) for i in range(containers)],
            "volumes": [
                {"name": "config", "configMap": {"name": "checkout-config", "defaultMode": 420}},
                {"name": "tmp", "emptyDir": {}},
                {"name": "kube-api-access-7xk2p", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
                ]}},
                {"name": "aws-iam-token", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}},
                ]}},
            ],
            "securityContext": {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001, "runAsNonRoot": True},
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "terminationGracePeriodSeconds": 30,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ],
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                           "whenUnsatisfiable": "ScheduleAnyway",
                                           "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "checkout"}}}],
        },
        "status": {},
    }


def review(objects: int, containers: int) -> dict:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.UUID(int=objects * 1000 + containers)),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "uid": "0f4b7a8e-3a8f-4c1e-8f0e-2b1f2d6c9a77",
                         "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]},
            "object": pod(objects, containers),
            "oldObject": None,
            "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }


# The pod of the load test: an app and a log-shipping sidecar, eight objects.
REALISTIC = (8, 2)


def main() -> None:
    if sys.argv[1:] == ["realistic"]:
        objects, containers = REALISTIC
    else:
        objects, containers = int(sys.argv[1]), int(sys.argv[2])
    json.dump(review(objects, containers), sys.stdout, separators=(",", ":"))


if __name__ == "__main__":
    main()
