"""CSI node plugins as the kubelet calls them for a pod's inline `csi:` volumes (NodePublishVolume).

An add-on registers a driver under its name in `ctx.csi_drivers`. Before a pod's containers start, the
kubelet publishes each of its CSI volumes: it requests the service-account tokens the driver's CSIDriver
object asks for (`spec.tokenRequests`, passed as `csi.storage.k8s.io/serviceAccount.tokens`), awaits
`publish`, and mounts the files it returns; a refusal keeps the pod in ContainerCreating with a
`FailedMount` event and a retry with back-off, as upstream. `unpublish` runs when the pod goes away.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

Obj = dict[str, Any]
TOKENS_ATTRIBUTE = "csi.storage.k8s.io/serviceAccount.tokens"


class CsiMountError(Exception):
    """NodePublishVolume failed; the message is the driver's gRPC error description."""


class CsiDriver(Protocol):
    token_audiences: tuple[str, ...]
    """The CSIDriver's `spec.tokenRequests` audiences."""

    async def publish(self, pod: Obj, volume: Obj, attributes: Mapping[str, str]) -> dict[str, bytes]:
        """The files of the volume (relative path → content); raises CsiMountError."""
        ...

    def unpublish(self, pod: Obj, volume_name: str) -> None: ...


def csi_volumes(pod: Obj) -> list[Obj]:
    return [v for v in (pod.get("spec") or {}).get("volumes") or [] if isinstance(v, dict) and v.get("csi")]
