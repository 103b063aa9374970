"""NetworkPolicy ingress semantics (`pytest_aksai._netpol`), shared by the static check and the sim's routing."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_aksai._netpol import Client, ingress_verdict

POD = {
    "metadata": {"name": "ws-0", "namespace": "inference", "labels": {"kaito.sh/workspace": "ws"}},
    "spec": {"containers": [{"ports": [{"name": "http", "containerPort": 5000}]}]},
}
SAME = Client("inference", {"kubernetes.io/metadata.name": "inference"})
APPS = Client("apps", {"kubernetes.io/metadata.name": "apps", "team": "apps"})


def _policy(spec: dict[str, Any], name: str = "p") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "inference"}, "spec": spec}


def test_no_policy_admits_everyone() -> None:
    assert ingress_verdict(POD, [], APPS, 5000).admitted


def test_a_default_deny_isolates_and_names_itself() -> None:
    verdict = ingress_verdict(POD, [_policy({"podSelector": {}}, "deny")], APPS, 5000)
    assert not verdict.admitted and verdict.isolating == ("deny",)


def test_an_egress_only_policy_does_not_isolate_ingress() -> None:
    assert ingress_verdict(
        POD, [_policy({"podSelector": {}, "policyTypes": ["Egress"]})], APPS, 5000
    ).admitted


@pytest.mark.parametrize(
    ("rule", "client", "admitted"),
    [
        ({}, APPS, True),  # no `from`, no `ports`: everyone
        ({"from": [{"podSelector": {}}]}, SAME, True),  # podSelector alone: the policy's namespace
        ({"from": [{"podSelector": {}}]}, APPS, False),
        ({"from": [{"namespaceSelector": {"matchLabels": {"team": "apps"}}}]}, APPS, True),
        (
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchExpressions": [{"key": "team", "operator": "In", "values": ["x"]}]
                        }
                    }
                ]
            },
            APPS,
            False,
        ),
        (
            {"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]},
            APPS,
            True,
        ),  # not evaluated: never reported as a block
        ({"ports": [{"port": "http"}]}, APPS, True),  # a named container port
        ({"ports": [{"port": 4000, "endPort": 6000}]}, APPS, True),
        ({"ports": [{"port": 8080}]}, APPS, False),
        ({"ports": [{"port": 5000, "protocol": "UDP"}]}, APPS, False),
    ],
)
def test_ingress_rules(rule: dict[str, Any], client: Client, admitted: bool) -> None:
    policy = _policy({"podSelector": {"matchLabels": {"kaito.sh/workspace": "ws"}}, "ingress": [rule]})
    assert ingress_verdict(POD, [policy], client, 5000, "http").admitted is admitted


def test_a_pod_selector_on_the_clients_admits_only_labelled_pods_when_the_labels_are_known() -> None:
    rule = {"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}
    policy = _policy({"podSelector": {}, "ingress": [rule]})
    assert ingress_verdict(POD, [policy], SAME, 5000).admitted  # some pod there may carry the label
    probe = Client("inference", SAME.namespace_labels, {"app": "probe"})
    assert not ingress_verdict(POD, [policy], probe, 5000).admitted
