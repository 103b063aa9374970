"""The simulated cluster's Kubernetes API server: an object store plus the REST API over aiohttp.

In-process use (controllers run on the API server's event loop; store methods are synchronous and atomic
there — never call them from another thread)::

    store = ctx.store
    pods = store.resource("v1", "pods")                 # plural, kind ("Pod"), singular or short name
    ws = store.resource("kaito.sh/v1beta1", "Workspace")
    pod = store.create(pods, {"metadata": {"generateName": "web-", "namespace": "default",
                                           "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                                "name": rs_name, "uid": rs_uid,
                                                                "controller": True}]},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    pod["status"]["phase"] = "Running"
    store.update_status(pods, pod)                       # 409 ApiError if pod is stale (resourceVersion)
    store.patch(pods, name, {"metadata": {"labels": {"a": "b"}}}, "merge", namespace="default")
    items = store.list(pods, "default", label_selector="app=web", field_selector="spec.nodeName=node-1")
    store.delete(pods, name, "default", grace_period_seconds=0)

    watch = store.watch(pods, None, resource_version=store.resource_version)   # only changes from now on
    async for event_type, obj in watch:                  # ADDED / MODIFIED / DELETED; copies
        ...
    watch.close()

Every method raises `ApiError` (with `.code`, `.reason`, `.status()`) exactly where the HTTP API answers
an error. Returned objects are copies. Deletion semantics apply to every writer: finalizers keep an object
(with `metadata.deletionTimestamp`) until an update empties them; `propagation_policy` Background (default)
/ Foreground / Orphan drives ownerReference garbage collection; deleting a Namespace turns it `Terminating`
and deletes its content; pods bound to a node are deleted gracefully (deletionTimestamp, then removal after
`terminationGracePeriodSeconds` of cluster time unless a kubelet deletes them with grace 0 first).
"""

from __future__ import annotations

from ._errors import ApiError
from ._schema import deepcopy
from ._server import HTTP_PORT_ANNOTATION, ApiServer, PodLogs
from ._store import ListResult, Store, Watch
from ._types import ResourceType

__all__ = [
    "HTTP_PORT_ANNOTATION",
    "ApiError",
    "ApiServer",
    "ListResult",
    "PodLogs",
    "ResourceType",
    "Store",
    "Watch",
    "deepcopy",
]
