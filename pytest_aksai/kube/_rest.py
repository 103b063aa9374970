"""Objects as plain dicts over the official client's transport, for any kind (core, apps, or custom).

The typed models of the `kubernetes` package cover only built-in kinds; the suites read KAITO, KEDA and
Karpenter objects as well, so every read goes through `ApiClient.call_api` and returns the JSON as sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """Where a kind is served: `Kind("apps", "v1", "statefulsets")`; the core group is `""`."""

    group: str
    version: str
    plural: str
    namespaced: bool = True
    kind: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        return base


NAMESPACES = Kind("", "v1", "namespaces", namespaced=False, kind="Namespace")
PODS = Kind("", "v1", "pods", kind="Pod")
SERVICES = Kind("", "v1", "services", kind="Service")
ENDPOINTS = Kind("", "v1", "endpoints", kind="Endpoints")
CONFIGMAPS = Kind("", "v1", "configmaps", kind="ConfigMap")
EVENTS = Kind("", "v1", "events", kind="Event")
NODES = Kind("", "v1", "nodes", namespaced=False, kind="Node")
STATEFULSETS = Kind("apps", "v1", "statefulsets", kind="StatefulSet")
DEPLOYMENTS = Kind("apps", "v1", "deployments", kind="Deployment")
WORKSPACES = Kind("kaito.sh", "v1beta1", "workspaces", kind="Workspace")
NODECLAIMS = Kind("karpenter.sh", "v1", "nodeclaims", namespaced=False, kind="NodeClaim")
NODEPOOLS = Kind("karpenter.sh", "v1", "nodepools", namespaced=False, kind="NodePool")
SCALEDOBJECTS = Kind("keda.sh", "v1alpha1", "scaledobjects", kind="ScaledObject")
HTTPSCALEDOBJECTS = Kind("http.keda.sh", "v1alpha1", "httpscaledobjects", kind="HTTPScaledObject")


_DEFAULT_TIMEOUT = (5.0, 30.0)
"""(connect, read) seconds: a half-open connection (VPN, private cluster) must not hang a run."""


def _call(
    api_client: k8s.ApiClient,
    method: str,
    path: str,
    *,
    query: dict[str, Any] | None = None,
    body: Any = None,
    preload: bool = True,
    timeout: Any = None,
    content_type: str = "application/json",
) -> Any:
    """One request; a parsed JSON body when `preload`, else the raw urllib3 response for streaming."""
    query_params = [(k, v) for k, v in (query or {}).items() if v is not None]
    headers = {"Accept": "application/json", "Content-Type": content_type}
    request = api_client.param_serialize(
        method,
        path,
        query_params=query_params,
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api_client.call_api(*request, _request_timeout=timeout or _DEFAULT_TIMEOUT)
    if not 200 <= response.status <= 299:
        response.read()
        raise ApiException.from_response(http_resp=response, body=None, data=None)
    if not preload:
        return response.response
    response.read()
    return json.loads(response.data) if response.data else {}


def get(api_client: k8s.ApiClient, kind: Kind, name: str, namespace: str | None = None) -> Obj | None:
    """The object, or None when it does not exist."""
    try:
        result: Obj = _call(api_client, "GET", kind.path(namespace, name))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return result


def list_(
    api_client: k8s.ApiClient,
    kind: Kind,
    namespace: str | None = None,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
) -> Obj:
    """The whole list body (items and `metadata.resourceVersion`)."""
    result: Obj = _call(
        api_client,
        "GET",
        kind.path(namespace),
        query={"labelSelector": label_selector, "fieldSelector": field_selector},
    )
    return result


def items(
    api_client: k8s.ApiClient, kind: Kind, namespace: str | None = None, **selectors: str | None
) -> list[Obj]:
    result: list[Obj] = list_(api_client, kind, namespace, **selectors).get("items") or []
    return result


def typed_items(api_client: k8s.ApiClient, kind: Kind, namespace: str | None = None) -> list[Obj]:
    """Like `items`, with `kind` and `apiVersion` set on each item (list items come without them)."""
    found = items(api_client, kind, namespace)
    for obj in found:
        obj.setdefault("kind", kind.kind)
        obj.setdefault("apiVersion", kind.api_version)
    return found


def create(api_client: k8s.ApiClient, kind: Kind, body: Obj, namespace: str | None = None) -> Obj:
    """Create-or-get by name: a create retried after a lost answer (see `_retry`) meets its own first attempt
    as 409 AlreadyExists, and gets that object back. Bodies must carry `metadata.name` (not generateName)."""
    try:
        result: Obj = _call(api_client, "POST", kind.path(namespace), body=body)
    except ApiException as exc:
        name = (body.get("metadata") or {}).get("name")
        if exc.status != 409 or not name or _reason(exc) != "AlreadyExists":
            raise
        existing = get(api_client, kind, name, namespace)
        if existing is None:
            raise
        return existing
    return result


def _reason(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("reason") or "")
    except ValueError:
        return ""


def patch_merge(
    api_client: k8s.ApiClient,
    kind: Kind,
    name: str,
    patch: Obj,
    namespace: str | None = None,
    subresource: str | None = None,
) -> Obj:
    result: Obj = _call(
        api_client,
        "PATCH",
        kind.path(namespace, name, subresource),
        body=patch,
        content_type="application/merge-patch+json",
    )
    return result


def delete(api_client: k8s.ApiClient, kind: Kind, name: str, namespace: str | None = None) -> bool:
    try:
        _call(api_client, "DELETE", kind.path(namespace, name), body={"propagationPolicy": "Background"})
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def raw_text(api_client: k8s.ApiClient, path: str, *, query: dict[str, Any] | None = None) -> str:
    response = _call(api_client, "GET", path, query=query, preload=False)
    try:
        return bytes(response.read()).decode("utf-8", errors="replace")
    finally:
        response.release_conn()


def watch(
    api_client: k8s.ApiClient,
    kind: Kind,
    namespace: str | None,
    *,
    resource_version: str,
    timeout_seconds: int,
    field_selector: str | None = None,
    label_selector: str | None = None,
) -> Iterator[Obj]:
    """Watch events (`{"type", "object"}` dicts) from `resource_version` until the server ends the watch.

    An `ERROR` event (e.g. 410 Expired for a compacted resourceVersion, sent in a 200 response) is raised as
    `ApiException` with its code, so callers can list again.
    """
    query = {
        "watch": "true",
        "resourceVersion": resource_version,
        "timeoutSeconds": timeout_seconds,
        "fieldSelector": field_selector,
        "labelSelector": label_selector,
        "allowWatchBookmarks": "true",
    }
    response = _call(
        api_client, "GET", kind.path(namespace), query=query, preload=False, timeout=(5, timeout_seconds + 10)
    )
    try:
        for line in _lines(response):
            event = json.loads(line)
            if event.get("type") == "ERROR":
                status = event.get("object") or {}
                raise ApiException(
                    status=int(status.get("code") or 500),
                    reason=f"{status.get('reason')}: {status.get('message')}",
                )
            yield event
    finally:
        response.release_conn()


def _lines(response: Any) -> Iterator[bytes]:
    """Newline-delimited JSON from a streamed response."""
    pending = b""
    for chunk in response.stream(_WATCH_CHUNK, decode_content=False):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from (line for line in complete if line.strip())
    if pending.strip():
        yield pending


_WATCH_CHUNK = 65536
