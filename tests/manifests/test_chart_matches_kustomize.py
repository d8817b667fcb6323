"""The Helm chart with default values (release secrets-injector in namespace secrets-injector)
renders what the kustomize base does, and each chart option what its kustomize variant does.
Compared: kind, namespace, name and everything but metadata.labels (Helm adds its own).

The one difference by design: the chart creates no Namespace (`helm install --create-namespace`
does; Helm charts don't own their release namespace), the base does."""

from __future__ import annotations

import pytest

from support import NAMESPACE, helm_render, normalised

VARIANTS = [
    ("base", {}),
    ("overlay-cert-manager", {"certificate": {"mode": "certManager"}}),
    ("base+object-selector", {"selector": {"mode": "objectSelector"}}),
    # The component's range, which its users replace, given to the chart as a value.
    ("base+network-policy", {"networkPolicy": {"enabled": True, "apiServerCIDR": "192.168.0.0/16"}}),
    ("base+secret-provider-classes", {"secretProviderClasses": {"enabled": True}}),
    (
        "base+network-policy+secret-provider-classes",
        {
            "networkPolicy": {"enabled": True, "apiServerCIDR": "192.168.0.0/16"},
            "secretProviderClasses": {"enabled": True},
        },
    ),
]


def without_namespace(docs):
    namespaces = [d for d in docs if d["kind"] == "Namespace"]
    assert [d["metadata"]["name"] for d in namespaces] == [NAMESPACE]
    return [d for d in docs if d["kind"] != "Namespace"]


@pytest.mark.parametrize(("kustomization", "values"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_chart_renders_the_kustomize_variant(kustomization, values, rendered):
    expected = normalised(without_namespace(rendered(kustomization)))
    actual = normalised(helm_render(values))
    assert sorted(actual) == sorted(expected), "the chart and kustomize render different resources"
    for resource, doc in expected.items():
        assert actual[resource] == doc, f"{resource} differs between the chart and kustomize"


def test_default_install_is_the_base(rendered):
    assert normalised(rendered("default")) == normalised(rendered("base"))


def test_chart_creates_no_namespace():
    assert not [d for d in helm_render({}) if d["kind"] == "Namespace"]


def test_comparison_sees_a_difference():
    # The comparison can fail: one changed value gives a different Deployment.
    assert normalised(helm_render({"replicas": 3})) != normalised(helm_render({}))
