"""Properties every install must keep, checked on every kustomization and chart rendering: the
webhook can't take the cluster down with it, can't read Secrets, and runs hardened."""

from __future__ import annotations

import pytest

from conftest import HELM_CASES, HELM_RELEASES, INSTALLS, KUSTOMIZATIONS, READS_CLASSES
from support import (
    INJECTOR_IMAGE,
    NAMESPACE,
    TLS_DIR,
    WEBHOOK_IMAGE,
    by_kind,
    namespace_labels,
    one,
    pod_specs,
    selector_matches,
    sends,
)

RENDERINGS = [("kustomize", name) for name in INSTALLS] + [("helm", case) for case in HELM_CASES]
IDS = [f"{source}:{name}" for source, name in RENDERINGS]
EVERYTHING = RENDERINGS + [("kustomize", "examples")]

POD_RULES = [
    {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "resources": ["pods"],
        "operations": ["CREATE", "UPDATE"],
        "scope": "Namespaced",
    }
]
# `kubectl debug` adds ephemeral containers through this subresource, whose object is the Pod.
EPHEMERAL_RULES = [
    {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "resources": ["pods/ephemeralcontainers"],
        "operations": ["UPDATE"],
        "scope": "Namespaced",
    }
]
WORKLOAD_RULES = [
    {
        "apiGroups": ["apps"],
        "apiVersions": ["v1"],
        "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"],
        "operations": ["CREATE", "UPDATE"],
        "scope": "Namespaced",
    },
    {
        "apiGroups": ["batch"],
        "apiVersions": ["v1"],
        "resources": ["jobs", "cronjobs"],
        "operations": ["CREATE", "UPDATE"],
        "scope": "Namespaced",
    },
]


@pytest.fixture
def docs(request, rendered, helm_rendered):
    source, name = request.param
    return rendered(name) if source == "kustomize" else helm_rendered(name)


def install_namespace(source: str, name: str) -> str:
    return HELM_RELEASES.get(name, (None, NAMESPACE))[1] if source == "helm" else NAMESPACE


def webhooks(docs):
    return one(docs, "MutatingWebhookConfiguration")["webhooks"]


@pytest.mark.parametrize("docs", RENDERINGS, ids=IDS, indirect=True)
def test_webhooks_fail_closed_and_answer_fast(docs):
    hooks = webhooks(docs)
    assert [h["name"] for h in hooks] == [
        "pods.secrets-injector.io",
        "workloads.secrets-injector.io",
        "ephemeral.secrets-injector.io",
    ]
    for hook in hooks:
        assert hook["failurePolicy"] == "Fail", hook["name"]
        assert hook["sideEffects"] == "None", hook["name"]
        assert 1 <= hook["timeoutSeconds"] <= 10, hook["name"]
        assert hook["reinvocationPolicy"] == "IfNeeded", hook["name"]
        assert hook["matchPolicy"] == "Equivalent", hook["name"]
        assert hook["admissionReviewVersions"] == ["v1"], hook["name"]
        assert hook["clientConfig"]["service"]["path"] == "/mutate", hook["name"]
        assert "url" not in hook["clientConfig"], hook["name"]
    assert hooks[0]["rules"] == POD_RULES
    assert [c["name"] for c in hooks[0]["matchConditions"]] == ["pod-created-or-injector-image-changed"]
    assert hooks[1]["rules"] == WORKLOAD_RULES
    assert hooks[2]["rules"] == EPHEMERAL_RULES
    assert [c["name"] for c in hooks[2]["matchConditions"]] == ["pod-has-the-webhooks-init-containers"]


@pytest.mark.parametrize(
    ("source", "name"), RENDERINGS, ids=IDS
)
def test_control_plane_and_own_namespace_are_never_sent(source, name, rendered, helm_rendered):
    docs = rendered(name) if source == "kustomize" else helm_rendered(name)
    own = install_namespace(source, name)
    opted_in = {"secrets-injector.io/inject": "enabled"}
    labelled_pod = {"secrets-injector.io/inject": "true"}
    for hook in webhooks(docs):
        assert hook["clientConfig"]["service"]["namespace"] == own
        expressions = hook["namespaceSelector"]["matchExpressions"]
        excluded = [e for e in expressions if e["key"] == "kubernetes.io/metadata.name"]
        assert len(excluded) == 1 and excluded[0]["operator"] == "NotIn"
        assert {"kube-system", own} <= set(excluded[0]["values"])
        # Even opted in by every label there is, these namespaces are left out.
        for namespace in ("kube-system", own):
            assert not sends(hook, namespace_labels(namespace, opted_in), labelled_pod), namespace
        # And an opted-in application namespace is sent.
        assert sends(hook, namespace_labels("shop", opted_in), labelled_pod)


@pytest.mark.parametrize(
    ("source", "name", "mode"),
    [
        ("kustomize", "base", "namespace"),
        ("kustomize", "overlay-cert-manager", "namespace"),
        ("kustomize", "base+object-selector", "objectSelector"),
        ("kustomize", "cert-manager+object-selector+network-policy", "objectSelector"),
        ("helm", "defaults", "namespace"),
        ("helm", "object-selector", "objectSelector"),
        ("helm", "everything-changed", "objectSelector"),
    ],
)
def test_selection_modes(source, name, mode, rendered, helm_rendered):
    docs = rendered(name) if source == "kustomize" else helm_rendered(name)
    enabled = namespace_labels("shop", {"secrets-injector.io/inject": "enabled"})
    plain = namespace_labels("shop")
    labelled = {"secrets-injector.io/inject": "true"}
    for hook in webhooks(docs):
        if hook["name"] == "ephemeral.secrets-injector.io" and mode == "objectSelector":
            # A pod's labels may have changed since it was injected: its matchCondition (the
            # webhook's init containers) selects it, in any namespace not excluded.
            assert "objectSelector" not in hook
            assert sends(hook, plain, {})
            assert sends(hook, enabled, {"secrets-injector.io/inject": "false"})
            continue
        if mode == "namespace":
            assert "objectSelector" not in hook
            assert sends(hook, enabled, {})
            assert not sends(hook, plain, labelled)
            assert not sends(hook, namespace_labels("shop", {"secrets-injector.io/inject": "true"}), {})
        else:
            assert sends(hook, plain, labelled)
            assert not sends(hook, plain, {})
            assert not sends(hook, enabled, {"secrets-injector.io/inject": "false"})


@pytest.mark.parametrize("docs", EVERYTHING, ids=[f"{s}:{n}" for s, n in EVERYTHING], indirect=True)
def test_no_rbac_no_daemonset_no_host_access(request, docs):
    kinds = {d["kind"] for d in docs}
    rbac = [d for d in docs if d["kind"] in {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}]
    if request.node.callspec.params["docs"] in READS_CLASSES:
        # Reading SecretProviderClasses: get, list and watch on them, and nothing else.
        [role] = [d for d in rbac if d["kind"] == "ClusterRole"]
        assert role["rules"] == [
            {
                "apiGroups": ["secrets-store.csi.x-k8s.io"],
                "resources": ["secretproviderclasses"],
                "verbs": ["get", "list", "watch"],
            }
        ]
        [binding] = [d for d in rbac if d["kind"] == "ClusterRoleBinding"]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role["metadata"]["name"],
        }
        sa = one(docs, "ServiceAccount")
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": sa["metadata"]["namespace"]}
        ]
        assert len(rbac) == 2
    else:
        # The webhook needs no API access at all, so no RBAC of any kind (and never Secrets access).
        assert not rbac
    assert "DaemonSet" not in kinds
    for doc in docs:
        for spec in pod_specs(doc):
            for flag in ("hostNetwork", "hostPID", "hostIPC"):
                assert not spec.get(flag), (doc["metadata"]["name"], flag)
            for volume in spec.get("volumes", []):
                assert "hostPath" not in volume, (doc["metadata"]["name"], volume)
            for container in spec.get("containers", []) + spec.get("initContainers", []):
                context = container.get("securityContext", {})
                assert not context.get("privileged"), (doc["metadata"]["name"], container["name"])
                assert not context.get("capabilities", {}).get("add"), container["name"]


@pytest.mark.parametrize("docs", RENDERINGS, ids=IDS, indirect=True)
def test_webhook_is_highly_available(docs):
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert selector_matches(pdb["spec"]["selector"], pod_labels)
    keys = {c["topologyKey"] for c in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    for constraint in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]:
        assert selector_matches(constraint["labelSelector"], pod_labels)


@pytest.mark.parametrize("docs", RENDERINGS, ids=IDS, indirect=True)
def test_webhook_pod_is_hardened(request, docs):
    spec = one(docs, "Deployment")["spec"]["template"]["spec"]
    # A token only to read SecretProviderClasses; the service account itself never mounts one.
    reads_classes = request.node.callspec.params["docs"] in READS_CLASSES
    assert spec["automountServiceAccountToken"] is reads_classes
    sa = one(docs, "ServiceAccount")
    assert sa["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == sa["metadata"]["name"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = spec["containers"]
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 65532
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


@pytest.mark.parametrize("docs", RENDERINGS, ids=IDS, indirect=True)
def test_webhook_serves_tls_from_the_secret(docs):
    deployment = one(docs, "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    [container] = spec["containers"]
    args = container["args"]
    assert args[0] == "serve"
    # A flag without a value (--secret-provider-classes) is on.
    flags = dict((a.removeprefix("--").split("=", 1) + ["true"])[:2] for a in args[1:])
    assert flags["listen"] == "0.0.0.0:8443"
    assert flags["tls-cert"] == f"{TLS_DIR}/tls.crt"
    assert flags["tls-key"] == f"{TLS_DIR}/tls.key"
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == TLS_DIR)
    assert mount["readOnly"] is True
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    secret_name = volume["secret"]["secretName"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["https"] == 8443
    assert flags["metrics-listen"] == f"0.0.0.0:{ports['metrics']}"
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert (get["path"], get["scheme"], ports[get["port"]]) == (path, "HTTPS", 8443)
    # The Service sends 443 to the admission port and exposes metrics, to these pods.
    service = one(docs, "Service")
    assert selector_matches({"matchLabels": service["spec"]["selector"]}, deployment["spec"]["template"]["metadata"]["labels"])
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert service_ports["https"]["port"] == 443
    assert ports[service_ports["https"]["targetPort"]] == 8443
    assert ports[service_ports["metrics"]["targetPort"]] == ports["metrics"]
    for hook in webhooks(docs):
        assert hook["clientConfig"]["service"]["name"] == service["metadata"]["name"]
        assert hook["clientConfig"]["service"]["port"] == 443
    # Where the key material comes from: cert-manager's Certificate, a generated Secret, or
    # nothing (the base holds no key material).
    certificates = [c for c in by_kind(docs, "Certificate") if not c["spec"].get("isCA")]
    secrets = by_kind(docs, "Secret")
    if certificates:
        [certificate] = certificates
        assert certificate["spec"]["secretName"] == secret_name
        namespace = deployment["metadata"]["namespace"]
        assert f"{service['metadata']['name']}.{namespace}.svc" in certificate["spec"]["dnsNames"]
        annotation = one(docs, "MutatingWebhookConfiguration")["metadata"]["annotations"]
        assert annotation["cert-manager.io/inject-ca-from"] == f"{namespace}/{certificate['metadata']['name']}"
        assert not secrets
    elif secrets:
        [secret] = secrets
        assert (secret["metadata"]["name"], secret["type"]) == (secret_name, "kubernetes.io/tls")
        assert all(h["clientConfig"].get("caBundle") for h in webhooks(docs))


@pytest.mark.parametrize(("source", "name"), [("kustomize", n) for n in ("default", "base")] + [("helm", "defaults")])
def test_default_install_holds_no_key_material(source, name, rendered, helm_rendered):
    docs = rendered(name) if source == "kustomize" else helm_rendered(name)
    assert not by_kind(docs, "Secret")
    assert not by_kind(docs, "Certificate")
    assert all("caBundle" not in h["clientConfig"] for h in webhooks(docs))


@pytest.mark.parametrize(("source", "name"), [("kustomize", "base"), ("helm", "defaults")])
def test_images_are_the_release_images(source, name, rendered, helm_rendered):
    import tomllib

    from support import REPO

    version = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["package"]["version"]
    docs = rendered(name) if source == "kustomize" else helm_rendered(name)
    [container] = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{WEBHOOK_IMAGE}:{version}"
    assert f"--injector-image={INJECTOR_IMAGE}:{version}" in container["args"]


def test_priority_class_is_admitted_where_its_use_is_limited(rendered):
    # GKE and API servers configured like it admit system-cluster-critical pods only in
    # namespaces with a ResourceQuota scoped to that class.
    docs = rendered("base")
    priority = one(docs, "Deployment")["spec"]["template"]["spec"]["priorityClassName"]
    quota = one(docs, "ResourceQuota")
    assert quota["metadata"]["namespace"] == NAMESPACE
    [expression] = quota["spec"]["scopeSelector"]["matchExpressions"]
    assert expression == {"scopeName": "PriorityClass", "operator": "In", "values": [priority]}
    assert int(quota["spec"]["hard"]["pods"]) >= 2 * one(docs, "Deployment")["spec"]["replicas"]


def test_network_policy_component(rendered):
    policy = one(rendered("base+network-policy"), "NetworkPolicy")
    pods = one(rendered("base"), "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert selector_matches(policy["spec"]["podSelector"], pods)
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "egress" not in policy["spec"]
    admission, metrics = policy["spec"]["ingress"]
    assert admission["ports"] == [{"protocol": "TCP", "port": 8443}]
    assert list(admission["from"][0]) == ["ipBlock"]
    assert metrics["ports"] == [{"protocol": "TCP", "port": 9090}]
    assert list(metrics["from"][0]) == ["namespaceSelector"]


def test_network_policy_cidr_is_set_by_a_patch(tmp_path):
    # The way docs/install.md tells users to set the API server's range.
    import os

    import yaml

    from support import MANIFESTS, kustomize

    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(MANIFESTS / "base", tmp_path)],
        "components": [os.path.relpath(MANIFESTS / "components" / "network-policy", tmp_path)],
        "patches": [
            {
                "target": {"kind": "NetworkPolicy", "name": "secrets-injector-webhook"},
                "patch": "- op: replace\n  path: /spec/ingress/0/from/0/ipBlock/cidr\n  value: 10.20.0.0/16\n",
            }
        ],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    policy = one(kustomize(tmp_path), "NetworkPolicy")
    assert policy["spec"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]


def test_chart_options_reach_the_webhook_flags(helm_rendered):
    docs = helm_rendered("everything-changed")
    [container] = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/platform/webhook@sha256:" + "a" * 64
    assert container["args"] == [
        "serve",
        "--listen=0.0.0.0:8443",
        f"--tls-cert={TLS_DIR}/tls.crt",
        f"--tls-key={TLS_DIR}/tls.key",
        "--metrics-listen=0.0.0.0:9100",
        "--injector-image=registry.example.com/platform/injector:1.2.3",
        "--default-region=eu-west-1",
        "--volume-size-limit=4Mi",
        "--injector-cpu-request=20m",
        "--injector-memory-request=32Mi",
        "--injector-cpu-limit=200m",
        "--injector-memory-limit=64Mi",
        "--injector-user=1000",
        "--refresh-min-interval=1m",
        "--refresh-cpu-request=5m",
        "--refresh-memory-request=12Mi",
        "--refresh-cpu-limit=50m",
        "--refresh-memory-limit=24Mi",
        "--log-format=text",
    ]
    spec = one(docs, "Deployment")["spec"]
    assert spec["replicas"] == 3
    assert "priorityClassName" not in spec["template"]["spec"]
    assert not by_kind(docs, "ResourceQuota")
    assert spec["template"]["spec"]["volumes"][0]["secret"]["secretName"] == "webhook-serving"
    hooks = webhooks(docs)
    assert {h["timeoutSeconds"] for h in hooks} == {5}
    excluded = hooks[0]["namespaceSelector"]["matchExpressions"][0]["values"]
    assert excluded == ["kube-system", "platform", "monitoring"]
    policy = one(docs, "NetworkPolicy")
    assert policy["spec"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]
    assert policy["spec"]["ingress"][1]["ports"] == [{"protocol": "TCP", "port": 9100}]


def test_chart_with_own_issuer_makes_only_the_serving_certificate(helm_rendered):
    docs = helm_rendered("cert-manager-own-issuer")
    assert not by_kind(docs, "Issuer")
    [certificate] = by_kind(docs, "Certificate")
    assert certificate["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    assert (certificate["spec"]["duration"], certificate["spec"]["renewBefore"]) == ("720h", "240h")


def test_notes_tell_how_to_opt_in():
    from support import helm_notes

    notes = helm_notes({})
    assert "kubectl label namespace <namespace> secrets-injector.io/inject=enabled" in notes
    assert "caBundle is empty" in notes
    assert 'secrets-injector.io/inject: "true"' in helm_notes({"selector": {"mode": "objectSelector"}})
    assert "failurePolicy is Ignore" in helm_notes({"failurePolicy": "Ignore"})
    assert "caBundle is empty" not in helm_notes({"certificate": {"mode": "certManager"}})


def test_failure_policy_ignore_is_a_deliberate_choice(helm_rendered):
    # Only an explicit value turns it off; the shipped defaults fail closed (checked above).
    from support import helm_render

    hooks = webhooks(helm_render({"failurePolicy": "Ignore"}))
    assert {h["failurePolicy"] for h in hooks} == {"Ignore"}


def test_kustomizations_are_all_checked():
    # Every kustomization in the tree is in the rendering list (a new one can't go unchecked).
    from support import MANIFESTS

    found = {p.parent.relative_to(MANIFESTS).as_posix() for p in MANIFESTS.rglob("kustomization.yaml")}
    assert found == {
        ".",
        "base",
        "overlays/cert-manager",
        "overlays/provided-certs",
        "components/object-selector",
        "components/network-policy",
        "components/secret-provider-classes",
        "examples",
    }
    assert len(KUSTOMIZATIONS) == 10
