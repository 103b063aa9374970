"""What the simulated cluster's controllers get: the store, the clock, the faults and a few helpers.

Conventions shared with the controllers:

- Pod logs: the simulated kubelet writes container output with `ctx.pod_logs.append(namespace, pod, container,
  text)`; `GET pods/<name>/log` (and `kubectl logs [-f]`) serve it.
- Reaching a pod over HTTP: a pod that serves HTTP carries the annotation `sim.aksai.dev/http-port: "<port>"`,
  the local port (on 127.0.0.1) of the process that plays every container port of that pod (e.g. the vLLM
  simulator of a model pod). `services/<name>[:<port>]/proxy/<path>` forwards to a Ready, non-terminating pod
  selected by the service that has this annotation, `pods/<name>[:<port>]/proxy/<path>` to the pod itself;
  responses are streamed chunk by chunk (SSE passes through unbuffered).
- The API server serves HTTPS with a throwaway CA (`ctx.ca_pem`, also embedded in the kubeconfig): kubectl
  sends bearer tokens only over TLS.
- The sim's own HTTP calls to the API server use `ctx.internal_token` as bearer token; they are exempt from
  the `api-flaky` fault.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from ._apiserver import ApiError, PodLogs, Store
from ._apiserver._tls import ServingCert
from ._clock import VirtualClock
from ._faults import ActiveFaults

DEFAULT_EVENT_COMPONENT = "aksai-sim"


@dataclass
class SimContext:
    store: Store
    clock: VirtualClock
    faults: ActiveFaults
    scenario: str
    server_url: str
    pod_logs: PodLogs
    internal_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    issuer: str = ""
    """The service-account token issuer (OIDC discovery at `<issuer>/.well-known/openid-configuration`)."""
    ca_pem: bytes = b""
    """The CA that signed the API server's serving certificate (for the sim's own HTTPS clients)."""
    serving_cert: ServingCert | None = None
    """The API server's certificate (SAN 127.0.0.1 and the host), for add-ons that serve HTTPS too."""
    csi_drivers: dict[str, Any] = field(default_factory=dict)
    """CSI node plugins by driver name (`sim._core._csi.CsiDriver`), registered by add-ons."""
    vms_gone: set[str] = field(default_factory=set)
    """Nodes whose VM no longer exists (e.g. a spot VM Azure evicted): their kubelet posts nothing more. The
    add-on that owns the VM plays the cloud node lifecycle controller and deletes the Node."""
    _event_names: dict[tuple[str, str, str, str], str] = field(default_factory=dict, repr=False)

    def record_event(
        self,
        involved_object: dict[str, Any],
        reason: str,
        message: str,
        type_: str = "Normal",
        component: str = DEFAULT_EVENT_COMPONENT,
    ) -> dict[str, Any]:
        """Record a core/v1 Event about `involved_object` (a full object or an ObjectReference-shaped dict);
        a repeat of the same reason and message bumps `count` and `lastTimestamp`, as the kubelet's recorder does."""
        meta = involved_object.get("metadata") or {}
        ref = {
            "apiVersion": involved_object.get("apiVersion", ""),
            "kind": involved_object.get("kind", ""),
            "name": meta.get("name", involved_object.get("name", "")),
            "namespace": meta.get("namespace", involved_object.get("namespace", "")),
            "uid": meta.get("uid", involved_object.get("uid", "")),
            "resourceVersion": meta.get("resourceVersion", involved_object.get("resourceVersion", "")),
        }
        ref = {k: v for k, v in ref.items() if v}
        namespace = ref.get("namespace") or "default"
        events = self.store.resource("v1", "events")
        now = self.clock.timestamp()
        key = (ref.get("uid", ref.get("name", "")), reason, message, type_)
        existing_name = self._event_names.get(key)
        if existing_name is not None:
            current = self.store.try_get(events, existing_name, namespace)
            if current is not None:
                current["count"] = int(current.get("count", 1)) + 1
                current["lastTimestamp"] = now
                try:
                    return self.store.update(events, current, namespace=namespace)
                except ApiError:
                    pass
        name = f"{ref.get('name', 'object')}.{secrets.token_hex(8)}"
        event = {
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": "",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        created = self.store.create(events, event, namespace=namespace)
        self._event_names[key] = name
        return created
