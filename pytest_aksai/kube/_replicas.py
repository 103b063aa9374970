"""The replicas of an endpoint while something else happens (a load run): the scaler that serves it, watched.

KEDA's recorder (`_keda.Recorder`) keeps a sample per change of the target's replicas and ready replicas and
the HPA's desired count; here it runs around a block of code for the scaler, if any, whose target is a given
workload (a KAITO Workspace's StatefulSet or Deployment of the same name).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from kubernetes.client.exceptions import ApiException

from pytest_aksai.kube import _rest
from pytest_aksai.kube._connect import Cluster
from pytest_aksai.kube._keda import Recorder, Sample, Scaler, scalers_from_objects

SERVED_KINDS = ("StatefulSet", "Deployment")
TARGET_LISTED_WALL_S = 5.0


class _ReplicaRecorder(Recorder):
    """KEDA's recorder without its watch on Nodes: a load run's timeline shows no GPU nodes, and every node
    status update would reach this process (on a time-compressed cluster, several a second) while the
    client measures."""

    def _watch_nodes(self) -> None:
        return


@dataclass
class ReplicaRecording:
    """What the scaler's target did during the block: samples in cluster seconds since it began."""

    scaler: str | None = None
    """`ScaledObject/ns/name` (or `HTTPScaledObject/…`), None when no scaler serves the workload."""
    target: str | None = None
    samples: list[Sample] = field(default_factory=list)
    ended_at: float | None = None
    """Cluster seconds from the start to the end of the block."""
    problem: str = ""
    """Why nothing was recorded although a scaler may serve the workload (an API error), or ""."""

    def ready_range(self) -> tuple[int, int] | None:
        """(fewest, most) ready replicas seen, None without samples."""
        if not self.samples:
            return None
        ready = [s.ready_replicas for s in self.samples]
        return min(ready), max(ready)


def scaler_serving(cluster: Cluster, namespace: str, name: str) -> Scaler | None:
    """The ScaledObject or HTTPScaledObject in `namespace` whose target is the workload `name`, if any."""
    objects: list[tuple[str, _rest.Obj]] = []
    for kind in (_rest.SCALEDOBJECTS, _rest.HTTPSCALEDOBJECTS):
        if not cluster.serves(kind.group, kind.version):
            continue
        try:
            objects += [("cluster", o) for o in _rest.typed_items(cluster._api, kind, namespace)]
        except ApiException as exc:
            if exc.status not in (403, 404):
                raise
    for scaler in scalers_from_objects(objects):
        if scaler.target_name == name and scaler.target_kind in SERVED_KINDS:
            return scaler
    return None


@contextmanager
def recording_replicas(cluster: Cluster, namespace: str, name: str) -> Iterator[ReplicaRecording]:
    """Record the replicas of the scaler serving `namespace/name` while the block runs (nothing when no
    scaler serves it; an API error is kept in `problem`, never raised: the recording is evidence, not a check)."""
    recording = ReplicaRecording()
    try:
        scaler = scaler_serving(cluster, namespace, name)
    except (ApiException, OSError) as exc:
        recording.problem = f"the scalers of namespace {namespace} could not be listed: {exc}"
        scaler = None
    if scaler is None:
        yield recording
        return
    recording.scaler = str(scaler)
    recording.target = f"{scaler.target_kind}/{scaler.namespace}/{scaler.target_name}"
    with _ReplicaRecorder(cluster, scaler) as recorder:
        # Until its watch has listed the target, the recorder samples it as 0 replicas: start from there.
        seen = recorder.wait(
            lambda _s: recorder._state.get("target") is not None, TARGET_LISTED_WALL_S * cluster.time_scale
        )
        base = recorder.now() if seen is not None else 0.0
        try:
            yield recording
        finally:
            end = recorder.now()
            recording.ended_at = round(end - base, 3)
            samples = recorder.since(0.0)
            before = [s for s in samples if s.t <= base]
            recording.samples = [dataclasses.replace(before[-1], t=0.0)] if before and seen else []
            recording.samples += [
                dataclasses.replace(s, t=round(s.t - base, 3)) for s in samples if s.t > base
            ]
            if seen is None:
                recording.problem = (
                    f"the recorder did not list {recording.target} within {TARGET_LISTED_WALL_S:g} s"
                )
