"""Scenarios: the lab the simulated cluster starts with, declared in YAML (package data `<name>.yaml`).

A scenario names the AKS cluster (region, versions), its node pools (VM size, count, zones, labels, taints),
the add-ons installed (their controllers' Deployments and Services appear in the cluster, and the list is
advertised in the ConfigMap `kube-system/aksai-sim`), extra namespaces and any objects to create at start
(including Nodes declared in full). `extends: <name>` starts from another scenario: lists are appended
(an object of the same apiVersion, kind, namespace and name replaces the parent's in place), the `cluster` table is
merged, other keys are replaced.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pytest_aksai.sim._addons import Component, resolve
from pytest_aksai.sim._scenarios._vmsizes import VM_SIZES, capacity_and_allocatable, vm_size


class ScenarioError(ValueError):
    pass


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Cluster(_Model):
    name: str = "aksai-lab"
    resource_group: str = Field("rg-aksai-lab", alias="resourceGroup")
    region: str = "eastus2"
    kubernetes_version: str = Field("1.30.6", alias="kubernetesVersion")
    node_image_version: str = Field("AKSUbuntu-2204gen2containerd-202411.12.0", alias="nodeImageVersion")


class NodePool(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9]{0,11}$")
    mode: Literal["System", "User"] = "User"
    vm_size: str = Field(alias="vmSize")
    count: int = Field(ge=0, le=100)
    zones: list[str] = Field(default_factory=lambda: ["1", "2", "3"])
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[str] = Field(default_factory=list)
    """AKS CLI syntax: `key=value:Effect`."""
    max_pods: int = Field(110, alias="maxPods", ge=10, le=250)

    @field_validator("vm_size")
    @classmethod
    def _known_size(cls, value: str) -> str:
        vm_size(value)
        return value

    @field_validator("taints")
    @classmethod
    def _taint_syntax(cls, values: list[str]) -> list[str]:
        for taint in values:
            _parse_taint(taint)
        return values


class Scenario(_Model):
    name: str = ""
    description: str = ""
    extends: str | None = None
    cluster: Cluster = Field(default_factory=lambda: Cluster.model_validate({}))
    addons: list[str] = Field(default_factory=list)
    node_pools: list[NodePool] = Field(default_factory=list, alias="nodePools")
    namespaces: list[str] = Field(default_factory=list)
    objects: list[dict[str, Any]] = Field(default_factory=list)
    azure: dict[str, Any] | None = None
    """The simulated Azure tenant (the `azure` add-on's schema: identities, keyVaults, ...)."""

    @field_validator("azure")
    @classmethod
    def _valid_tenant(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            from pytest_aksai.sim._addons.azure._tenant import parse_tenant

            parse_tenant(value, "azure")
        return value

    @field_validator("addons")
    @classmethod
    def _known_addons(cls, values: list[str]) -> list[str]:
        resolve(values)
        return values


def _parse_taint(text: str) -> dict[str, str]:
    key_value, sep, effect = text.rpartition(":")
    if not sep or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute") or not key_value:
        raise ValueError(
            f"taint {text!r} is not `key=value:Effect` with Effect NoSchedule, PreferNoSchedule or NoExecute"
        )
    key, _, value = key_value.partition("=")
    return {"key": key, "value": value, "effect": effect} if value else {"key": key, "effect": effect}


def available_scenarios() -> list[str]:
    return sorted(
        e.name[: -len(".yaml")] for e in resources.files(__name__).iterdir() if e.name.endswith(".yaml")
    )


def _read(name_or_path: str) -> tuple[dict[str, Any], str]:
    path = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")):
        if not path.is_file():
            raise ScenarioError(
                f"scenario file {name_or_path!r} does not exist; give an existing YAML file or one "
                f"of the built-in scenarios: {', '.join(available_scenarios())}"
            )
        text, source = path.read_text(encoding="utf-8"), str(path)
    else:
        if name_or_path not in available_scenarios():
            raise ScenarioError(
                f"unknown scenario {name_or_path!r} (the `--scenario` option); built-in scenarios: "
                f"{', '.join(available_scenarios())}, or pass the path of a scenario YAML file"
            )
        text = (resources.files(__name__) / f"{name_or_path}.yaml").read_text(encoding="utf-8")
        source = f"built-in scenario {name_or_path}"
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario is a YAML mapping, got {type(data).__name__}")
    return data, source


def _object_identity(obj: Any) -> tuple[str, ...]:
    meta = (obj.get("metadata") or {}) if isinstance(obj, dict) else {}
    fields = (obj.get("apiVersion"), obj.get("kind"), meta.get("namespace"), meta.get("name"))
    return tuple(str(f or "") for f in fields) if isinstance(obj, dict) else (repr(obj),)


def _merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    merged = dict(parent)
    for key, value in child.items():
        if key == "objects" and isinstance(value, list):
            overrides = {_object_identity(o): o for o in value}
            inherited = [overrides.pop(_object_identity(o), o) for o in parent.get(key) or []]
            merged[key] = inherited + list(overrides.values())
        elif key in ("nodePools", "namespaces") and isinstance(value, list):
            merged[key] = list(parent.get(key) or []) + value
        elif key == "cluster" and isinstance(value, dict):
            merged[key] = {**(parent.get(key) or {}), **value}
        else:
            merged[key] = value
    return merged


def load_scenario(name_or_path: str, _seen: tuple[str, ...] = ()) -> Scenario:
    """A built-in scenario by name, or a scenario YAML file by path; raises ScenarioError naming the problem."""
    if name_or_path in _seen:
        raise ScenarioError(
            f"scenario {name_or_path!r} extends itself (chain: {' -> '.join((*_seen, name_or_path))})"
        )
    data, source = _read(name_or_path)
    if data.get("extends"):
        parent = load_scenario(str(data["extends"]), (*_seen, name_or_path))
        data = _merge(parent.model_dump(by_alias=True, exclude={"name", "description", "extends"}), data)
    data.setdefault("name", Path(name_or_path).stem)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ScenarioError(
            f"{source} is not a valid scenario: {problems}. Fix the key(s) named; known VM sizes: "
            f"{', '.join(sorted(VM_SIZES))}"
        ) from None


# ---- building the objects ------------------------------------------------------------------------------


def _pool_hash(cluster: Cluster, pool: NodePool) -> str:
    digest = hashlib.sha256(f"{cluster.resource_group}/{cluster.name}/{pool.name}".encode()).hexdigest()
    return str(int(digest[:12], 16) % 10**8).zfill(8)


def pool_nodes(scenario: Scenario, pool: NodePool, first_index: int, now: str) -> list[dict[str, Any]]:
    """The Node objects AKS registers for a pool: names, labels, taints, capacity and Ready conditions."""
    cluster = scenario.cluster
    size = vm_size(pool.vm_size)
    capacity, allocatable = capacity_and_allocatable(size, pool.max_pods)
    pool_hash = _pool_hash(cluster, pool)
    node_rg = f"MC_{cluster.resource_group}_{cluster.name}_{cluster.region}"
    nodes = []
    for i in range(pool.count):
        index = first_index + i
        name = f"aks-{pool.name}-{pool_hash}-vmss{i:06d}"
        zone = f"{cluster.region}-{pool.zones[i % len(pool.zones)]}" if pool.zones else "0"
        labels = {
            "agentpool": pool.name,
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/instance-type": size.name,
            "beta.kubernetes.io/os": "linux",
            "failure-domain.beta.kubernetes.io/region": cluster.region,
            "failure-domain.beta.kubernetes.io/zone": zone,
            "kubernetes.azure.com/agentpool": pool.name,
            "kubernetes.azure.com/cluster": node_rg,
            "kubernetes.azure.com/consolidated-additional-properties": pool_hash,
            "kubernetes.azure.com/kubelet-identity-client-id": "00000000-0000-0000-0000-000000000000",
            "kubernetes.azure.com/mode": pool.mode.lower(),
            "kubernetes.azure.com/node-image-version": cluster.node_image_version,
            "kubernetes.azure.com/nodepool-type": "VirtualMachineScaleSets",
            "kubernetes.azure.com/os-sku": "Ubuntu",
            "kubernetes.azure.com/role": "agent",
            "kubernetes.azure.com/storageprofile": "managed",
            "kubernetes.azure.com/storagetier": "Premium_LRS",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/role": "agent",
            "node-role.kubernetes.io/agent": "",
            "node.kubernetes.io/instance-type": size.name,
            "storageprofile": "managed",
            "storagetier": "Premium_LRS",
            "topology.disk.csi.azure.com/zone": zone,
            "topology.kubernetes.io/region": cluster.region,
            "topology.kubernetes.io/zone": zone,
        }
        if size.gpu is not None:
            labels["kubernetes.azure.com/accelerator"] = "nvidia"
            labels["nvidia.com/gpu.product"] = size.gpu.product_label
            labels["nvidia.com/gpu.count"] = str(size.gpu_count)
            labels["nvidia.com/gpu.memory"] = str(size.gpu.memory_mib)
        labels.update(pool.labels)
        ip = f"10.224.0.{4 + index}"
        stamp_conditions = [
            {
                "type": t,
                "status": "False",
                "reason": r,
                "message": m,
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
            for t, r, m in (
                ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            )
        ] + [
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
        ]
        node: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": labels,
                "annotations": {
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                },
            },
            "spec": {
                "podCIDR": f"10.244.{index}.0/24",
                "podCIDRs": [f"10.244.{index}.0/24"],
                "providerID": (
                    f"azure:///subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
                    f"{node_rg.lower()}/providers/Microsoft.Compute/virtualMachineScaleSets/"
                    f"aks-{pool.name}-{pool_hash}-vmss/virtualMachines/{i}"
                ),
            },
            "status": {
                "capacity": capacity,
                "allocatable": allocatable,
                "conditions": stamp_conditions,
                "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "architecture": "amd64",
                    "operatingSystem": "linux",
                    "osImage": "Ubuntu 22.04.5 LTS",
                    "kernelVersion": "5.15.0-1074-azure",
                    "containerRuntimeVersion": "containerd://1.7.23-1",
                    "kubeletVersion": f"v{cluster.kubernetes_version}",
                    "kubeProxyVersion": f"v{cluster.kubernetes_version}",
                    "machineID": hashlib.md5(name.encode()).hexdigest(),
                    "systemUUID": "",
                    "bootID": "",
                },
            },
        }
        if pool.taints:
            node["spec"]["taints"] = [_parse_taint(t) for t in pool.taints]
        nodes.append(node)
    return nodes


def addon_objects(addon: Component) -> list[dict[str, Any]]:
    labels = {"app": addon.name, **addon.labels}
    container: dict[str, Any] = {
        "name": addon.name,
        "image": addon.image,
        "resources": {"requests": {"cpu": addon.cpu, "memory": addon.memory}},
    }
    if addon.ports:
        container["ports"] = [{"name": n, "containerPort": p} for n, p in addon.ports.items()]
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": addon.name, "namespace": addon.namespace, "labels": dict(labels)},
            "spec": {
                "replicas": addon.replicas,
                "selector": {"matchLabels": {"app": addon.name}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "priorityClassName": "system-cluster-critical",
                        "containers": [container],
                        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
                        **({"serviceAccountName": addon.service_account} if addon.service_account else {}),
                    },
                },
            },
        }
    ]
    if addon.ports:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": addon.name, "namespace": addon.namespace, "labels": dict(labels)},
                "spec": {
                    "selector": {"app": addon.name},
                    "ports": [
                        {"name": n, "port": p, "targetPort": n, "protocol": "TCP"}
                        for n, p in addon.ports.items()
                    ],
                },
            }
        )
    return objects


def scenario_objects(scenario: Scenario, now: str) -> list[dict[str, Any]]:
    """Everything the scenario creates, in order: namespaces, nodes, add-ons, then the declared objects."""
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in scenario.namespaces
    ]
    index = 0
    for pool in scenario.node_pools:
        objects.extend(pool_nodes(scenario, pool, index, now))
        index += pool.count
    namespaces = set(scenario.namespaces)
    for addon in resolve(scenario.addons):
        for component in addon.components:
            if component.namespace not in namespaces:
                namespaces.add(component.namespace)
                objects.append(
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": component.namespace}}
                )
            objects.extend(addon_objects(component))
    objects.extend(scenario.objects)
    return objects
