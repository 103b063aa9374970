"""Scale targets through the `/scale` subresource's paths, for any kind that has one (as KEDA's scale client)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_aksai.sim._apiserver import ApiError, ResourceType, Store


@dataclass(frozen=True)
class Target:
    rt: ResourceType
    name: str
    namespace: str

    @property
    def kind(self) -> str:
        """`apps/v1.StatefulSet`: KEDA's `status.scaleTargetKind`."""
        return f"{self.rt.api_version}.{self.rt.kind}"

    def gvkr(self) -> dict[str, str]:
        return {
            "group": self.rt.group,
            "version": self.rt.version,
            "kind": self.rt.kind,
            "resource": self.rt.plural,
        }


class TargetError(Exception):
    pass


def _get(obj: Any, path: str) -> Any:
    for part in path.lstrip(".").split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def resolve(store: Store, ref: dict[str, Any], namespace: str) -> Target:
    """The target of a `scaleTargetRef` (apiVersion defaults to apps/v1, kind to Deployment, as `gvkr.go`)."""
    api_version = ref.get("apiVersion") or "apps/v1"
    kind = ref.get("kind") or "Deployment"
    name = ref.get("name") or ""
    if not name:
        raise TargetError("ScaledObject.spec.scaleTargetRef.name is missing")
    try:
        rt = store.resource(api_version, kind)
    except ApiError:
        raise TargetError(f'no matches for kind "{kind}" in version "{api_version}"') from None
    if rt.scale is None:
        raise TargetError(
            f'the server could not find the requested resource ({rt.group_resource} "{name}" scale)'
        )
    if store.try_get(rt, name, namespace) is None:
        raise TargetError(f'{rt.group_resource} "{name}" not found')
    return Target(rt, name, namespace)


def replicas(store: Store, target: Target) -> tuple[int, int]:
    """(spec replicas, status replicas) as the Scale object reports them."""
    obj = store.get(target.rt, target.name, target.namespace)
    assert target.rt.scale is not None
    spec = _get(obj, target.rt.scale.spec_replicas_path)
    status = _get(obj, target.rt.scale.status_replicas_path)
    return (1 if spec is None else int(spec)), int(status or 0)


def ready_replicas(store: Store, target: Target) -> int:
    obj = store.get(target.rt, target.name, target.namespace)
    return int((obj.get("status") or {}).get("readyReplicas") or 0)


def selector(store: Store, target: Target) -> str:
    obj = store.get(target.rt, target.name, target.namespace)
    assert target.rt.scale is not None
    path = target.rt.scale.label_selector_path
    found = _get(obj, path) if path else None
    if found is None and not target.rt.custom:
        from pytest_aksai.sim._apiserver._selectors import selector_to_string

        found = selector_to_string((obj.get("spec") or {}).get("selector"))
    return str(found or "")


def scale(store: Store, target: Target, count: int) -> None:
    """PUT the Scale: only the spec replicas path changes."""
    assert target.rt.scale is not None
    parts = target.rt.scale.spec_replicas_path.lstrip(".").split(".")
    patch: dict[str, Any] = {parts[-1]: count}
    for part in reversed(parts[:-1]):
        patch = {part: patch}
    store.patch(target.rt, target.name, patch, "merge", namespace=target.namespace)
