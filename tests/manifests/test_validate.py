"""Every kustomization and every chart rendering is valid Kubernetes for each supported version
(kubernetes-validate --strict: unknown fields fail)."""

from __future__ import annotations

import pytest

from conftest import CERT_MANAGER_KINDS, HELM_CASES, KUSTOMIZATIONS
from support import KUBERNETES_VERSIONS, validate


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_kustomization_is_valid(name, version, rendered, tmp_path):
    skipped = validate(rendered(name), version, tmp_path)
    assert sorted(skipped) == CERT_MANAGER_KINDS.get(name, [])


HELM_CERT_MANAGER_KINDS = {
    "cert-manager": ["Certificate", "Certificate", "Issuer", "Issuer"],
    # With an issuer of the user's: the serving certificate only.
    "cert-manager-own-issuer": ["Certificate"],
}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("case", HELM_CASES)
def test_chart_rendering_is_valid(case, version, helm_rendered, tmp_path):
    skipped = validate(helm_rendered(case), version, tmp_path)
    assert sorted(skipped) == HELM_CERT_MANAGER_KINDS.get(case, [])


def test_validation_rejects_an_unknown_field(tmp_path):
    # The check above can fail: a field the schema doesn't know is an error under --strict.
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": 443}], "targetPorts": [8443]},
    }
    with pytest.raises(AssertionError, match="targetPorts"):
        validate([service], "1.33", tmp_path)


def test_validation_rejects_a_kind_without_schema(tmp_path):
    # kubernetes-validate only warns about kinds it doesn't know; that must not pass silently.
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"ports": [{"port": 1}]}}
    with pytest.raises(AssertionError, match="Widget"):
        validate([service, unknown], "1.33", tmp_path)


def test_validation_only_leaves_out_cert_manager_kinds(tmp_path):
    other = {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "x"}}
    with pytest.raises(AssertionError, match="ClusterIssuer"):
        validate([other], "1.33", tmp_path)
