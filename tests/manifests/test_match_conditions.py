"""The webhooks' matchConditions, evaluated offline with a CEL interpreter (cel-python) on the
requests the API server would send: pod CREATEs and pod UPDATEs that change the injector's image
reach the webhook, every other pod UPDATE does not; workloads keep their own condition; an
ephemeral container added to a pod with the webhook's init containers reaches it, whatever the
object the client sent says."""

from __future__ import annotations

import copy

import celpy
import pytest

from conftest import HELM_CASES, INSTALLS
from support import one

RENDERINGS = [("kustomize", name) for name in INSTALLS] + [("helm", case) for case in HELM_CASES]
IDS = [f"{source}:{name}" for source, name in RENDERINGS]


@pytest.fixture
def docs(request, rendered, helm_rendered):
    source, name = request.param
    return rendered(name) if source == "kustomize" else helm_rendered(name)


def condition(docs, webhook: str):
    """The webhook's only matchCondition, compiled."""
    hooks = {h["name"]: h for h in one(docs, "MutatingWebhookConfiguration")["webhooks"]}
    conditions = hooks[webhook]["matchConditions"]
    assert len(conditions) == 1, conditions
    env = celpy.Environment()
    return env.program(env.compile(conditions[0]["expression"]))


def sent(program, operation: str, resource: str, obj, old) -> bool:
    activation = {
        "request": celpy.json_to_cel({"operation": operation, "resource": {"resource": resource}}),
        "object": celpy.json_to_cel(obj),
        "oldObject": celpy.json_to_cel(old),
    }
    result = program.evaluate(activation)
    assert isinstance(result, celpy.celtypes.BoolType), result
    return bool(result)


INJECTED_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "initContainers": [
            {"name": "secrets-injector", "image": "injector:1", "args": ["--region=us-east-1"]},
            {"name": "setup", "image": "busybox:1"},
        ],
        "containers": [{"name": "app", "image": "nginx:1"}],
    },
}


def changed(pod, edit):
    pod = copy.deepcopy(pod)
    edit(pod)
    return pod


def init_image(index: int, image: str | None):
    def edit(pod):
        container = pod["spec"]["initContainers"][index]
        if image is None:
            container.pop("image", None)
        else:
            container["image"] = image

    return edit


def set_label(pod):
    pod["metadata"]["labels"]["release"] = "canary"


def second_injector(pod):
    pod["spec"]["initContainers"].append({"name": "secrets-injector-2", "image": "injector:1"})


def no_init_containers(pod):
    del pod["spec"]["initContainers"]


@pytest.mark.parametrize("docs", RENDERINGS, ids=IDS, indirect=True)
def test_only_pod_creates_and_injector_image_changes_reach_the_webhook(docs):
    program = condition(docs, "pods.secrets-injector.io")
    pod = INJECTED_POD
    two = changed(pod, second_injector)
    plain = changed(pod, no_init_containers)
    cases = [
        # (operation, object, oldObject, sent)
        ("CREATE", pod, None, True),
        ("CREATE", plain, None, True),
        ("UPDATE", pod, pod, False),
        ("UPDATE", changed(pod, set_label), pod, False),
        ("UPDATE", plain, plain, False),
        ("UPDATE", changed(plain, set_label), plain, False),
        ("UPDATE", changed(pod, init_image(1, "busybox:2")), pod, False),
        ("UPDATE", changed(pod, init_image(0, "evil.example/miner:1")), pod, True),
        ("UPDATE", changed(pod, init_image(0, None)), pod, True),
        ("UPDATE", pod, changed(pod, init_image(0, None)), True),
        ("UPDATE", changed(two, init_image(2, "evil.example/miner:1")), two, True),
        ("UPDATE", two, two, False),
        # Init containers cannot be added on UPDATE; if one tried, the webhook sees it.
        ("UPDATE", pod, plain, True),
    ]
    for operation, obj, old, expected in cases:
        assert sent(program, operation, "pods", obj, old) == expected, (operation, obj, old)


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {"replicas": 1, "template": INJECTED_POD},
}
CRONJOB = {
    "apiVersion": "batch/v1",
    "kind": "CronJob",
    "metadata": {"name": "nightly"},
    "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": INJECTED_POD}}},
}


def scale(workload):
    workload["spec"]["replicas"] = 3


@pytest.mark.parametrize("docs", RENDERINGS, ids=IDS, indirect=True)
def test_workloads_keep_their_condition(docs):
    program = condition(docs, "workloads.secrets-injector.io")
    deployment = DEPLOYMENT
    new_image = changed(deployment, lambda d: init_image(1, "busybox:2")(d["spec"]["template"]))
    cronjob = CRONJOB
    new_job = changed(cronjob, lambda c: set_label(c["spec"]["jobTemplate"]["spec"]["template"]))
    cases = [
        ("CREATE", "deployments", deployment, None, True),
        ("UPDATE", "deployments", changed(deployment, scale), deployment, False),
        ("UPDATE", "deployments", new_image, deployment, True),
        ("CREATE", "cronjobs", cronjob, None, True),
        ("UPDATE", "cronjobs", cronjob, cronjob, False),
        ("UPDATE", "cronjobs", new_job, cronjob, True),
    ]
    for operation, resource, obj, old, expected in cases:
        assert sent(program, operation, resource, obj, old) == expected, (operation, resource)


def add_debugger(pod):
    pod["spec"]["ephemeralContainers"] = [
        {"name": "debug", "image": "busybox", "volumeMounts": [{"name": "secrets-injector", "mountPath": "/s"}]}
    ]


def csi_only(pod):
    pod["spec"]["initContainers"] = [{"name": "secrets-injector-csi-store", "image": "injector:1"}]


@pytest.mark.parametrize("docs", RENDERINGS, ids=IDS, indirect=True)
def test_ephemeral_containers_of_injected_pods_reach_the_webhook(docs):
    program = condition(docs, "ephemeral.secrets-injector.io")
    pod = INJECTED_POD
    plain = changed(pod, no_init_containers)
    csi = changed(pod, csi_only)
    cases = [
        # (object, oldObject, sent)
        (changed(pod, add_debugger), pod, True),
        (changed(csi, add_debugger), csi, True),
        (changed(plain, add_debugger), plain, False),
        # The client's object without the init containers: the stored pod still has them.
        (changed(plain, add_debugger), pod, True),
    ]
    for obj, old, expected in cases:
        assert sent(program, "UPDATE", "pods", obj, old) == expected, (obj, old)
