"""AKS system components every cluster runs: CoreDNS (image and labels as AKS ships them); metrics-server is
its own add-on (`metrics-server`), since it serves an API."""

from __future__ import annotations

from pytest_aksai.sim._addons._spec import AddonSpec, Component

ADDON = AddonSpec(
    name="core",
    description="AKS system Deployments: coredns",
    package=__name__,
    components=(
        Component(
            "coredns",
            "mcr.microsoft.com/oss/kubernetes/coredns:v1.11.3-2",
            replicas=2,
            labels={"k8s-app": "kube-dns", "kubernetes.azure.com/managedby": "aks"},
            memory="70Mi",
        ),
    ),
)
