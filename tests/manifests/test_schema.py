"""values.schema.json rejects bad values, naming the key; good non-default values pass."""

from __future__ import annotations

import pytest

from conftest import HELM_CASES
from support import helm_chart

BAD_VALUES = [
    ({"replicas": 1}, "/replicas"),
    ({"replicas": "2"}, "/replicas"),
    ({"unknownKey": True}, "unknownKey"),
    ({"image": {"repository": "ghcr.io/secrets-injector/webhook", "tag": "0.1.0", "pullPolicy": "IfNotPresent", "digest": "x"}}, "digest"),
    ({"image": {"repository": "ghcr.io/Secrets Injector", "tag": "", "pullPolicy": "IfNotPresent"}}, "/image/repository"),
    ({"image": {"repository": "ghcr.io/secrets-injector/webhook", "tag": "0.1 .0", "pullPolicy": "IfNotPresent"}}, "/image/tag"),
    ({"image": {"repository": "ghcr.io/secrets-injector/webhook", "tag": "", "pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"injector": {"image": {"repository": "", "tag": ""}}}, "/injector/image/repository"),
    ({"injector": {"image": {"repository": "ghcr.io/x/injector", "tag": ""}, "resources": {"requests": {"cpu": "lots"}}}}, "/injector/resources/requests/cpu"),
    ({"injector": {"image": {"repository": "ghcr.io/x/injector", "tag": ""}, "resources": {"requests": {"gpu": "1"}}}}, "gpu"),
    ({"injector": {"image": {"repository": "ghcr.io/x/injector", "tag": ""}, "user": "0; rm"}}, "/injector/user"),
    # Root is never a default user of the init container.
    ({"injector": {"image": {"repository": "ghcr.io/x/injector", "tag": ""}, "user": "0"}}, "/injector/user"),
    ({"injector": {"image": {"repository": "ghcr.io/x/injector", "tag": ""}, "volumeSizeLimit": "big"}}, "/injector/volumeSizeLimit"),
    ({"injector": {"image": {"repository": "ghcr.io/x/injector", "tag": ""}, "refresh": {"minInterval": "30"}}}, "/injector/refresh/minInterval"),
    ({"injector": {"image": {"repository": "ghcr.io/x/injector", "tag": ""}, "refresh": {"minInterval": "1d"}}}, "/injector/refresh/minInterval"),
    ({"injector": {"image": {"repository": "ghcr.io/x/injector", "tag": ""}, "refresh": {"resources": {"limits": {"memory": "lots"}}}}}, "/injector/refresh/resources/limits/memory"),
    ({"injector": {"image": {"repository": "ghcr.io/x/injector", "tag": ""}, "refresh": {"interval": "5m"}}}, "interval"),
    ({"resources": {"limits": {"memory": "a lot"}}}, "/resources/limits/memory"),
    ({"failurePolicy": "ignore"}, "/failurePolicy"),
    ({"timeoutSeconds": 30}, "/timeoutSeconds"),
    ({"timeoutSeconds": 0}, "/timeoutSeconds"),
    ({"selector": {"mode": "pod"}}, "/selector/mode"),
    ({"excludedNamespaces": ["Bad_Namespace"]}, "/excludedNamespaces/0"),
    ({"excludedNamespaces": ["a", "a"]}, "/excludedNamespaces"),
    ({"metrics": {"port": 8443}}, "/metrics/port"),
    ({"metrics": {"port": 80}}, "/metrics/port"),
    ({"priorityClassName": "System Critical"}, "/priorityClassName"),
    ({"defaultRegion": "US-EAST-1"}, "/defaultRegion"),
    ({"logFormat": "xml"}, "/logFormat"),
    ({"certificate": {"mode": "manual"}}, "/certificate/mode"),
    ({"certificate": {"mode": "existingSecret", "existingSecret": {"caBundle": "not base64!"}}}, "/certificate/existingSecret/caBundle"),
    # Base64 of something that is not PEM (a PEM starts with "-----", base64 "LS0t").
    ({"certificate": {"mode": "existingSecret", "existingSecret": {"caBundle": "aGVsbG8="}}}, "/certificate/existingSecret/caBundle"),
    ({"certificate": {"mode": "certManager", "certManager": {"issuerRef": {"kind": "ClusterIssuer"}}}}, "/certificate/certManager/issuerRef"),
    ({"certificate": {"mode": "certManager", "certManager": {"duration": "90 days"}}}, "/certificate/certManager/duration"),
    ({"networkPolicy": {"enabled": True}}, "/networkPolicy"),
    ({"networkPolicy": {"enabled": True, "apiServerCIDR": "the VPC"}}, "/networkPolicy/apiServerCIDR"),
    ({"tolerations": [{"key": "a", "operator": "Maybe"}]}, "/tolerations/0/operator"),
]


@pytest.mark.parametrize(("values", "path"), BAD_VALUES, ids=[p for _, p in BAD_VALUES])
def test_bad_values_are_rejected(values, path):
    from helm_python.errors import HelmValuesError

    chart = helm_chart()
    with pytest.raises(HelmValuesError) as schema_error:
        chart.validate_schema(chart.merge_values(values))
    assert path in str(schema_error.value)
    # And rendering (what `helm install` does) refuses them too.
    with pytest.raises(HelmValuesError) as render_error:
        chart.render(values=values, name="secrets-injector", namespace="secrets-injector")
    assert path in str(render_error.value)


@pytest.mark.parametrize("case", HELM_CASES)
def test_shipped_cases_pass_the_schema(case):
    chart = helm_chart()
    chart.validate_schema(chart.merge_values(HELM_CASES[case]))


def test_injector_user_can_be_left_unset():
    chart = helm_chart()
    values = {"injector": {"image": {"repository": "ghcr.io/x/injector", "tag": ""}, "user": "none"}}
    chart.validate_schema(chart.merge_values(values))


def test_defaults_pass_the_schema():
    chart = helm_chart()
    chart.validate_schema(chart.values)


def test_chart_metadata():
    chart = helm_chart()
    assert chart.metadata["apiVersion"] == "v2"
    assert chart.metadata["name"] == "secrets-injector"
    assert chart.schema is not None and chart.schema["additionalProperties"] is False


@pytest.mark.parametrize("kube_version", ["v1.29.0", "v1.33.0"])
@pytest.mark.parametrize("case", HELM_CASES)
def test_chart_lints_clean(case, kube_version):
    from helm_python.chart import lint

    from support import CHART

    helm_chart()  # fails clearly when helm-python-sdk is missing
    report = lint(str(CHART), HELM_CASES[case], strict=True, namespace="secrets-injector", kube_version=kube_version)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], problems or report["errors"]

