"""SecretProviderClasses: the kustomize component and the Helm values add the webhook's flags, and
only with them does the webhook get a token, read-only RBAC on secretproviderclasses (checked in
test_safety.py) and, behind a NetworkPolicy, egress to the API server."""

from __future__ import annotations

from support import one


def args(docs):
    [container] = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container["args"]


def test_the_component_turns_the_feature_on(rendered):
    assert "--secret-provider-classes" in args(rendered("base+secret-provider-classes"))
    for name in ("base", "default"):
        assert not [a for a in args(rendered(name)) if "provider-classes" in a or "csi-volumes" in a]


def test_the_helm_values_give_the_flags(helm_rendered):
    assert "--secret-provider-classes" in args(helm_rendered("secret-provider-classes"))
    rewrite = args(helm_rendered("csi-rewrite-network-policy"))
    assert "--csi-volumes=rewrite" in rewrite
    assert "--secret-provider-classes" not in rewrite
    assert not [a for a in args(helm_rendered("defaults")) if "provider-classes" in a or "csi-volumes" in a]


def test_behind_a_network_policy_the_api_server_is_reachable(helm_rendered, rendered):
    policy = one(rendered("base+network-policy+secret-provider-classes"), "NetworkPolicy")
    assert policy["spec"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "192.168.0.0/16"}}], "ports": [{"protocol": "TCP", "port": 443}]}
    ]
    policy = one(helm_rendered("csi-rewrite-network-policy"), "NetworkPolicy")
    assert policy["spec"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": [{"protocol": "TCP", "port": 443}]}
    ]
    # Without the feature the webhook opens no connections: egress stays closed.
    policy = one(helm_rendered("everything-changed"), "NetworkPolicy")
    assert "Egress" in policy["spec"]["policyTypes"]
    assert "egress" not in policy["spec"]
