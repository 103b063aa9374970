"""AKS system components every cluster runs: CoreDNS and metrics-server (images and labels as AKS ships them)."""

from __future__ import annotations

from pytest_aksai.sim._addons._spec import AddonSpec, Component

ADDON = AddonSpec(
    name="core",
    description="AKS system Deployments: coredns and metrics-server",
    package=__name__,
    components=(
        Component(
            "coredns",
            "mcr.microsoft.com/oss/kubernetes/coredns:v1.11.3-2",
            replicas=2,
            labels={"k8s-app": "kube-dns", "kubernetes.azure.com/managedby": "aks"},
            memory="70Mi",
        ),
        Component(
            "metrics-server",
            "mcr.microsoft.com/oss/kubernetes/metrics-server:v0.7.2",
            replicas=2,
            labels={"k8s-app": "metrics-server", "kubernetes.azure.com/managedby": "aks"},
            cpu="150m",
            memory="100Mi",
            ports={"https": 4443},
        ),
    ),
)
