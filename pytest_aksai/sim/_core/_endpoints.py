"""Endpoints and EndpointSlices (discovery.k8s.io/v1) for Services with a selector.

Ready pods are `addresses`, the others `notReadyAddresses` (all of them `addresses` with
`publishNotReadyAddresses`); terminating pods are left out. Named target ports resolve against each pod's
container ports. One EndpointSlice per Service, owned by it, labelled as the upstream controller does.
"""

from __future__ import annotations

from typing import Any

from pytest_aksai.sim._core._framework import Controller, Obj, Watch, object_key, split_key
from pytest_aksai.sim._core._podutil import is_ready, is_terminal, owner_reference

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"


def _pod_event(self: EndpointsController, _event_type: str, pod: Obj) -> list[str]:
    namespace = pod["metadata"].get("namespace")
    labels = pod["metadata"].get("labels") or {}
    keys = []
    for svc in self.list("v1", "services", namespace):
        selector = (svc.get("spec") or {}).get("selector") or {}
        if selector and all(labels.get(k) == v for k, v in selector.items()):
            keys.append(object_key(svc))
    return keys


def _resolve_port(port: Obj, pod: Obj) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for cport in container.get("ports") or []:
            if cport.get("name") == target:
                return int(cport["containerPort"])
    return None


class EndpointsController(Controller):
    name = "endpoints"
    watches = (Watch("v1", "services"), Watch("v1", "pods", _pod_event))

    async def reconcile(self, key: str) -> float | None:
        namespace, name = split_key(key)
        svc = self.get("v1", "services", key)
        endpoints_rt = self.rt("v1", "endpoints")
        if svc is None:
            if self.store.try_get(endpoints_rt, name, namespace) is not None:
                self.store.delete(endpoints_rt, name, namespace)
            return None
        spec = svc.get("spec") or {}
        selector = spec.get("selector") or {}
        if not selector or svc["metadata"].get("deletionTimestamp"):
            return None
        label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        pods = [
            p
            for p in self.list("v1", "pods", namespace, label_selector=label_selector)
            if (p.get("status") or {}).get("podIP")
            and not is_terminal(p)
            and not p["metadata"].get("deletionTimestamp")
        ]
        pods.sort(key=lambda p: p["metadata"]["name"])
        self._sync_endpoints(svc, pods)
        self._sync_slice(svc, pods)
        return None

    def _address(self, svc: Obj, pod: Obj) -> Obj:
        meta = pod["metadata"]
        address: Obj = {
            "ip": pod["status"]["podIP"],
            "targetRef": {
                "kind": "Pod",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
        }
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name:
            address["nodeName"] = node_name
        pod_spec = pod.get("spec") or {}
        if pod_spec.get("hostname") and pod_spec.get("subdomain") == svc["metadata"]["name"]:
            address["hostname"] = pod_spec["hostname"]
        return address

    def _sync_endpoints(self, svc: Obj, pods: list[Obj]) -> None:
        spec = svc.get("spec") or {}
        publish_all = bool(spec.get("publishNotReadyAddresses"))
        subsets: dict[tuple[tuple[str, int, str], ...], Obj] = {}
        for pod in pods:
            ports = []
            for port in spec.get("ports") or []:
                number = _resolve_port(port, pod)
                if number is not None:
                    ports.append((port.get("name", ""), number, port.get("protocol", "TCP")))
            subset = subsets.setdefault(tuple(ports), {})
            field = "addresses" if publish_all or is_ready(pod) else "notReadyAddresses"
            subset.setdefault(field, []).append(self._address(svc, pod))
        body_subsets = []
        for ports_key, subset in subsets.items():
            entry: Obj = dict(subset)
            entry["ports"] = [
                {**({"name": n} if n else {}), "port": p, "protocol": proto} for n, p, proto in ports_key
            ]
            body_subsets.append(entry)
        labels = dict(svc["metadata"].get("labels") or {})
        if spec.get("clusterIP") == "None":
            labels["service.kubernetes.io/headless"] = ""
        endpoints_rt = self.rt("v1", "endpoints")
        meta = svc["metadata"]
        current = self.store.try_get(endpoints_rt, meta["name"], meta["namespace"])
        if current is None:
            body: Obj = {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": labels},
            }
            if body_subsets:
                body["subsets"] = body_subsets
            self.store.create(endpoints_rt, body)
            return
        if current.get("subsets", []) != body_subsets or (current["metadata"].get("labels") or {}) != labels:
            current["metadata"]["labels"] = labels
            current["subsets"] = body_subsets
            if not body_subsets:
                current.pop("subsets")
            self.store.update(endpoints_rt, current)

    def _sync_slice(self, svc: Obj, pods: list[Obj]) -> None:
        spec = svc.get("spec") or {}
        meta = svc["metadata"]
        slices_rt = self.rt("discovery.k8s.io/v1", "endpointslices")
        zones = {
            n["metadata"]["name"]: (n["metadata"].get("labels") or {}).get("topology.kubernetes.io/zone")
            for n in self.list("v1", "nodes")
        }
        endpoints = []
        ports: list[Obj] = []
        for pod in pods:
            ready = is_ready(pod)
            endpoint: Obj = {
                "addresses": [pod["status"]["podIP"]],
                "conditions": {
                    "ready": ready or bool(spec.get("publishNotReadyAddresses")),
                    "serving": ready,
                    "terminating": False,
                },
                "targetRef": {
                    "kind": "Pod",
                    "namespace": meta["namespace"],
                    "name": pod["metadata"]["name"],
                    "uid": pod["metadata"]["uid"],
                },
            }
            node_name = (pod.get("spec") or {}).get("nodeName")
            if node_name:
                endpoint["nodeName"] = node_name
                if zones.get(node_name):
                    endpoint["zone"] = zones[node_name]
            if (pod.get("spec") or {}).get("hostname") and (pod.get("spec") or {}).get("subdomain") == meta[
                "name"
            ]:
                endpoint["hostname"] = pod["spec"]["hostname"]
            endpoints.append(endpoint)
            if not ports:
                for port in spec.get("ports") or []:
                    number = _resolve_port(port, pod)
                    if number is not None:
                        entry: Obj = {
                            "name": port.get("name", ""),
                            "port": number,
                            "protocol": port.get("protocol", "TCP"),
                        }
                        if port.get("appProtocol"):
                            entry["appProtocol"] = port["appProtocol"]
                        ports.append(entry)
        labels = {
            **(meta.get("labels") or {}),
            SERVICE_NAME_LABEL: meta["name"],
            MANAGED_BY_LABEL: MANAGED_BY,
        }
        if spec.get("clusterIP") == "None":
            labels["service.kubernetes.io/headless"] = ""
        existing = self.list(
            "discovery.k8s.io/v1",
            "endpointslices",
            meta["namespace"],
            label_selector=f"{SERVICE_NAME_LABEL}={meta['name']},{MANAGED_BY_LABEL}={MANAGED_BY}",
        )
        desired: dict[str, Any] = {"addressType": "IPv4", "endpoints": endpoints, "ports": ports}
        if not existing:
            self.store.create(
                slices_rt,
                {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "generateName": f"{meta['name']}-",
                        "namespace": meta["namespace"],
                        "labels": labels,
                        "ownerReferences": [owner_reference(svc)],
                    },
                    **desired,
                },
            )
            return
        current = existing[0]
        if (
            any(current.get(k) != v for k, v in desired.items())
            or current["metadata"].get("labels") != labels
        ):
            current.update(desired)
            current["metadata"]["labels"] = labels
            self.store.update(slices_rt, current)
        for extra in existing[1:]:
            self.store.delete(slices_rt, extra["metadata"]["name"], meta["namespace"])
