"""Which GPU nodes the cluster ran during the run, and for how long: the report's GPU node-minutes by SKU.

A background watch on Nodes from the moment the run first connects to the cluster until the report is
written. Durations are cluster minutes (wall time × the cluster's time scale), since those are what a real
cluster bills; a node already there when the run started counts from then, one still there at the end up to
then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes.client.exceptions import ApiException

from pytest_aksai.kube import _rest
from pytest_aksai.kube._connect import Cluster
from pytest_aksai.kube._rest import Obj

GPU_RESOURCE = "nvidia.com/gpu"
GPU_COUNT_LABELS = ("karpenter.azure.com/sku-gpu-count", "kubernetes.azure.com/sku-gpu-count")
"""A node that has not advertised its GPU yet (device plugin still starting) is a GPU node already."""
INSTANCE_TYPE_LABELS = ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
_WATCH_SECONDS = 30


@dataclass
class GpuNodeUse:
    name: str
    sku: str
    capacity_type: str
    """`on-demand` or `spot` (Karpenter's label; nodes of AKS node pools count as on-demand)."""
    gpus: int
    first_seen: float
    last_seen: float | None = None
    """Monotonic wall seconds; None while the node is present."""

    def cluster_minutes(self, end: float, time_scale: float) -> float:
        last = self.last_seen if self.last_seen is not None else end
        return max(0.0, last - self.first_seen) * time_scale / 60.0


def gpu_count(node: Obj) -> int:
    status = node.get("status") or {}
    for source in (status.get("capacity") or {}, status.get("allocatable") or {}):
        try:
            if int(str(source.get(GPU_RESOURCE, "0"))) > 0:
                return int(str(source[GPU_RESOURCE]))
        except ValueError:
            continue
    labels = (node.get("metadata") or {}).get("labels") or {}
    for label in GPU_COUNT_LABELS:
        try:
            if int(labels.get(label, "0")) > 0:
                return int(labels[label])
        except ValueError:
            continue
    return 0


class GpuNodeLedger:
    def __init__(self, cluster: Cluster, clock: Callable[[], float] = time.monotonic) -> None:
        self._cluster = cluster
        self._clock = clock
        self._open: dict[str, GpuNodeUse] = {}
        self._closed: list[GpuNodeUse] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aksai-gpu-ledger", daemon=True)
        self.error: str | None = None
        self._end: float | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> list[GpuNodeUse]:
        """Stop watching; the nodes seen, with each one's time in the cluster during the run."""
        self._end = self._clock()
        self._stopped.set()
        with self._lock:
            return self._closed + list(self._open.values())

    @property
    def end(self) -> float:
        return self._end if self._end is not None else self._clock()

    def _observe(self, event: str, node: Obj) -> None:
        gpus = gpu_count(node)
        metadata = node.get("metadata") or {}
        labels = metadata.get("labels") or {}
        name = str(metadata.get("name"))
        with self._lock:
            if self._stopped.is_set():
                return
            if event == "DELETED":
                self._close(name)
            elif gpus and name not in self._open:
                sku = next((labels[k] for k in INSTANCE_TYPE_LABELS if labels.get(k)), "unknown")
                capacity_type = labels.get(CAPACITY_TYPE_LABEL, "on-demand")
                self._open[name] = GpuNodeUse(name, sku, capacity_type, gpus, self._clock())

    def _close(self, name: str) -> None:
        use = self._open.pop(name, None)
        if use is not None:
            use.last_seen = self._clock()
            self._closed.append(use)

    def _run(self) -> None:
        api = self._cluster._api
        while not self._stopped.is_set():
            try:
                listed = _rest.list_(api, _rest.NODES)
                nodes = listed.get("items") or []
                present = {str((n.get("metadata") or {}).get("name")) for n in nodes}
                with self._lock:
                    for gone in set(self._open) - present:  # deleted while the watch was re-established
                        self._close(gone)
                for node in nodes:
                    self._observe("ADDED", node)
                version = str((listed.get("metadata") or {}).get("resourceVersion") or "")
                events = _rest.watch(
                    api, _rest.NODES, None, resource_version=version, timeout_seconds=_WATCH_SECONDS
                )
                for event in events:
                    if self._stopped.is_set():
                        return
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        self._observe(str(event["type"]), event.get("object") or {})
            except ApiException as exc:
                if exc.status != 410 and not self._stopped.is_set():
                    self.error = f"watching nodes failed ({exc.status} {exc.reason})"
                    self._stopped.wait(5)
            except Exception as exc:  # the ledger must never break the run; the report says it is partial
                if self._stopped.is_set():
                    return
                self.error = f"watching nodes failed ({type(exc).__name__}: {exc})"
                self._stopped.wait(5)
