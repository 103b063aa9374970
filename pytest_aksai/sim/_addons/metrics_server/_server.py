"""The simulated metrics-server: scrapes every node's "kubelet" each `--metric-resolution` (15 s, as AKS
configures it) and serves the last samples as `metrics.k8s.io/v1beta1` NodeMetrics and PodMetrics.

As metrics-server v0.7 (`pkg/api/node.go`, `pkg/api/pod.go`, `pkg/storage`):

- A CPU value is a rate, so an object has metrics only from its second scrape on; `window` is the time
  between the two samples and `timestamp` the newer one. Memory is the working set.
- Only Running pods are listed; objects are sorted by namespace then name; labels and field selectors
  (`metadata.name`, `metadata.namespace`) select the underlying pods and nodes.
- `GET` of a pod or node without metrics answers 404 `podmetrics.metrics.k8s.io "<ns>/<name>" not found`
  (`nodemetrics.metrics.k8s.io "<name>" not found`); a pod that does not exist, `pods "<name>" not found`.
- The APIService `v1beta1.metrics.k8s.io` is `Available` only while the `kube-system/metrics-server`
  Service has a ready endpoint (`MissingEndpoints` otherwise, with the aggregator's message); meanwhile
  the API answers 503, as kube-aggregator does.

Usage comes from `pytest_aksai.sim._core._usage` (the model, and add-ons' providers such as vLLM's).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pytest_aksai.sim._apiserver import ApiError, ResourceType
from pytest_aksai.sim._apiserver._aggregated import aggregated_type, not_found
from pytest_aksai.sim._core import _resources, _usage
from pytest_aksai.sim._core._framework import Controller, Obj, Watch
from pytest_aksai.sim._core._podutil import condition_true

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
APISERVICE = f"{VERSION}.{GROUP}"
RESOLUTION = 15.0
NAMESPACE = "kube-system"
SERVICE = "metrics-server"
_SCRAPE = "scrape"
_APISERVICE_KEY = "apiservice"


def go_duration(seconds: float) -> str:
    """A duration as Go's `time.Duration.String()` prints it (`15s`, `15.012s`, `1m0.5s`)."""
    millis = round(seconds * 1000)
    minutes, millis = divmod(millis, 60_000)
    text = f"{millis / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{minutes}m{text}" if minutes else text


def _rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(int(moment), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Sample:
    at: float
    previous_at: float | None
    usage: dict[str, _usage.Usage]
    """Container name (or "" for a node) → usage over the window."""
    labels: dict[str, str]
    uid: str


class MetricsServerController(Controller):
    name = "metrics-server"
    watches = (
        Watch(
            "v1",
            "endpoints",
            lambda _self, _t, ep: (
                [_APISERVICE_KEY]
                if (ep.get("metadata") or {}).get("name") == SERVICE
                and (ep.get("metadata") or {}).get("namespace") == NAMESPACE
                else []
            ),
        ),
    )

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.group = GROUP
        self.version = VERSION
        self._nodes_rt = aggregated_type(API_VERSION, "nodes", "NodeMetrics", namespaced=False)
        self._pods_rt = aggregated_type(API_VERSION, "pods", "PodMetrics", namespaced=True)
        self.node_samples: dict[str, _Sample] = {}
        self.pod_samples: dict[tuple[str, str], _Sample] = {}
        self._available = False

    # ---- the AggregatedApi the API server calls --------------------------------------------------------
    def types(self) -> builtins.list[ResourceType]:
        return [self._nodes_rt, self._pods_rt]

    def available(self) -> bool:
        return self._available

    def items(self, rt: ResourceType, namespace: str | None) -> builtins.list[Obj]:
        if rt is self._nodes_rt or rt.plural == "nodes":
            return [
                self._node_metrics(name, s) for name, s in sorted(self.node_samples.items()) if s.previous_at
            ]
        return [
            self._pod_metrics(ns, name, s)
            for (ns, name), s in sorted(self.pod_samples.items())
            if s.previous_at and (namespace is None or ns == namespace)
        ]

    def get(self, rt: ResourceType, name: str, namespace: str | None) -> Obj:  # type: ignore[override]
        if rt.plural == "nodes":
            if self.store.try_get(self.rt("v1", "nodes"), name) is None:
                # the node lister's NotFound, returned as it is
                raise ApiError(404, f'node "{name}" not found', details={"name": name, "kind": "node"})
            sample = self.node_samples.get(name)
            if sample is None or sample.previous_at is None:
                raise not_found(rt, name)
            return self._node_metrics(name, sample)
        ns = namespace or "default"
        if self.store.try_get(self.rt("v1", "pods"), name, ns) is None:
            raise ApiError(404, f'pod "{name}" not found', details={"name": name, "kind": "pod"})
        pod_sample = self.pod_samples.get((ns, name))
        if pod_sample is None or pod_sample.previous_at is None:
            raise not_found(rt, f"{ns}/{name}")
        return self._pod_metrics(ns, name, pod_sample)

    def table(self, rt: ResourceType, items: builtins.list[Obj]) -> Obj:
        columns = [
            {
                "name": "Name",
                "type": "string",
                "format": "name",
                "description": "Name of the resource",
                "priority": 0,
            },
            {"name": "cpu", "type": "string", "format": "quantity", "description": "", "priority": 0},
            {"name": "memory", "type": "string", "format": "quantity", "description": "", "priority": 0},
            {"name": "Window", "type": "string", "format": "duration", "description": "", "priority": 0},
        ]
        rows = []
        for obj in items:
            if rt.plural == "nodes":
                usage = obj["usage"]
                cpu, memory = usage["cpu"], usage["memory"]
            else:
                cores = sum(float(_resources.parse(c["usage"]["cpu"])) for c in obj["containers"])
                total = sum(int(_resources.parse(c["usage"]["memory"])) for c in obj["containers"])
                cpu, memory = _usage.format_cpu(cores), _usage.format_memory(total)
            rows.append(
                {
                    "cells": [obj["metadata"]["name"], cpu, memory, obj["window"]],
                    "object": {
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": obj["metadata"],
                    },
                }
            )
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {},
            "columnDefinitions": columns if items else [],
            "rows": rows,
        }

    def _meta(self, name: str, namespace: str | None, labels: dict[str, str]) -> Obj:
        meta: Obj = {"name": name}
        if namespace is not None:
            meta["namespace"] = namespace
        meta["creationTimestamp"] = self.clock.timestamp()
        if labels:
            meta["labels"] = dict(labels)
        return meta

    def _node_metrics(self, name: str, sample: _Sample) -> Obj:
        usage = sample.usage[""]
        return {
            "kind": "NodeMetrics",
            "apiVersion": API_VERSION,
            "metadata": self._meta(name, None, sample.labels),
            "timestamp": _rfc3339(sample.at),
            "window": go_duration(sample.at - (sample.previous_at or sample.at)),
            "usage": {
                "cpu": _usage.format_cpu(usage.cpu_cores),
                "memory": _usage.format_memory(usage.memory_bytes),
            },
        }

    def _pod_metrics(self, namespace: str, name: str, sample: _Sample) -> Obj:
        return {
            "kind": "PodMetrics",
            "apiVersion": API_VERSION,
            "metadata": self._meta(name, namespace, sample.labels),
            "timestamp": _rfc3339(sample.at),
            "window": go_duration(sample.at - (sample.previous_at or sample.at)),
            "containers": [
                {
                    "name": container,
                    "usage": {
                        "cpu": _usage.format_cpu(usage.cpu_cores),
                        "memory": _usage.format_memory(usage.memory_bytes),
                    },
                }
                for container, usage in sample.usage.items()
            ],
        }

    # ---- running ---------------------------------------------------------------------------------------
    def start(self) -> builtins.list[Any]:
        self.store.register_aggregated(self)
        self._ensure_apiservice()
        self.queue.add(_SCRAPE)
        self.queue.add(_APISERVICE_KEY)
        tasks = super().start()
        import asyncio

        async def _unregister_on_cancel() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                self.store.unregister_aggregated(self)

        tasks.append(asyncio.create_task(_unregister_on_cancel(), name=f"{self.name}:aggregated"))
        return tasks

    async def reconcile(self, key: str) -> float | None:
        if key == _SCRAPE:
            self._scrape()
            return RESOLUTION
        if key == _APISERVICE_KEY:
            self._sync_apiservice()
        return None

    def _ensure_apiservice(self) -> None:
        rt = self.rt("apiregistration.k8s.io/v1", "apiservices")
        if self.store.try_get(rt, APISERVICE) is not None:
            return
        self.store.create(
            rt,
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {
                    "name": APISERVICE,
                    "labels": {
                        "addonmanager.kubernetes.io/mode": "Reconcile",
                        "k8s-app": "metrics-server",
                        "kubernetes.azure.com/managedby": "aks",
                    },
                },
                "spec": {
                    "group": GROUP,
                    "groupPriorityMinimum": 100,
                    "insecureSkipTLSVerify": True,
                    "service": {"name": SERVICE, "namespace": NAMESPACE, "port": 443},
                    "version": VERSION,
                    "versionPriority": 100,
                },
            },
        )

    def _sync_apiservice(self) -> None:
        endpoints = self.store.try_get(self.rt("v1", "endpoints"), SERVICE, NAMESPACE)
        ready = any(subset.get("addresses") for subset in ((endpoints or {}).get("subsets") or []))
        self._available = ready
        if ready:
            condition = {
                "type": "Available",
                "status": "True",
                "reason": "Passed",
                "message": "all checks passed",
            }
        else:
            condition = {
                "type": "Available",
                "status": "False",
                "reason": "MissingEndpoints",
                "message": f'endpoints for service/{SERVICE} in "{NAMESPACE}" have no addresses with port name "https"',
            }
        rt = self.rt("apiregistration.k8s.io/v1", "apiservices")
        current = self.store.try_get(rt, APISERVICE)
        if current is None:
            return
        conditions = (current.get("status") or {}).get("conditions") or []
        old = next((c for c in conditions if c.get("type") == "Available"), None)
        if old is not None and all(old.get(k) == v for k, v in condition.items()):
            return
        condition["lastTransitionTime"] = (
            old["lastTransitionTime"]
            if old is not None and old.get("status") == condition["status"]
            else self.clock.timestamp()
        )
        current["status"] = {"conditions": [condition]}
        self.store.update_status(rt, current)

    def _scrape(self) -> None:
        now = self.clock.now().timestamp()
        pods_by_node: dict[str, builtins.list[Obj]] = {}
        for pod in self.list("v1", "pods"):
            node = (pod.get("spec") or {}).get("nodeName")
            if node and (pod.get("status") or {}).get("phase") == "Running":
                pods_by_node.setdefault(node, []).append(pod)
        seen_nodes: set[str] = set()
        seen_pods: set[tuple[str, str]] = set()
        for node in self.list("v1", "nodes"):
            meta = node["metadata"]
            if not condition_true(node, "Ready"):
                continue
            capacity = _resources.parse_map((node.get("status") or {}).get("capacity"))
            cores = float(capacity.get("cpu", Decimal(2)))
            total = _usage.system_usage(node, now)
            for pod in pods_by_node.get(meta["name"], []):
                pmeta = pod["metadata"]
                running = {
                    s.get("name")
                    for s in (pod.get("status") or {}).get("containerStatuses") or []
                    if (s.get("state") or {}).get("running")
                }
                usage = {
                    str(c["name"]): _usage.container_usage(self.store, pod, c, now, cores)
                    for c in (pod.get("spec") or {}).get("containers") or []
                    if c.get("name") in running
                }
                if not usage:
                    continue
                for value in usage.values():
                    total = total + value
                key = (pmeta["namespace"], pmeta["name"])
                seen_pods.add(key)
                self.pod_samples[key] = self._next(self.pod_samples.get(key), now, usage, pmeta)
            seen_nodes.add(meta["name"])
            total = _usage.Usage(min(total.cpu_cores, cores), total.memory_bytes)
            self.node_samples[meta["name"]] = self._next(
                self.node_samples.get(meta["name"]), now, {"": total}, meta
            )
        for gone in set(self.pod_samples) - seen_pods:
            del self.pod_samples[gone]
        for gone_node in set(self.node_samples) - seen_nodes:
            del self.node_samples[gone_node]

    @staticmethod
    def _next(previous: _Sample | None, now: float, usage: dict[str, _usage.Usage], meta: Obj) -> _Sample:
        uid = str(meta.get("uid", ""))
        before = previous.at if previous is not None and previous.uid == uid else None
        return _Sample(now, before, usage, dict(meta.get("labels") or {}), uid)
