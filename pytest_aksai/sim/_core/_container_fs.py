"""What a process inside a simulated container sees: its environment and its files.

The environment is the kubelet's: `PATH`/`HOSTNAME`, the container's `env` and `envFrom` (with `$(VAR)`
references and `valueFrom` resolved), the service-link variables of the namespace's Services and the
`KUBERNETES_*` variables of the API server, `HOME`. The files are the kubelet's mounts (`/etc/hosts`,
`/etc/hostname`, `/etc/resolv.conf`, the service-account token, configMap / secret / projected / emptyDir
volumes) plus whatever `kubectl cp` or a shell redirection wrote, kept per container until the pod goes away.
"""

from __future__ import annotations

import base64
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
API_SERVICE_IP = "10.0.0.1"
CLUSTER_DNS_IP = "10.0.0.10"
CLUSTER_DOMAIN = "cluster.local"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
Obj = dict[str, Any]


@dataclass
class ContainerFiles:
    """Files written inside one container (overlaying its mounts) and paths removed from it."""

    written: dict[str, bytes] = field(default_factory=dict)
    directories: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)


def expand_references(value: str, env: Mapping[str, str]) -> str:
    """`$(VAR)` as the kubelet expands it: defined variables are replaced, `$$` escapes, others stay."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return _REFERENCE.sub(replace, value)


def _field_ref(pod: Obj, path: str) -> str:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
        "status.hostIPs": ",".join(i.get("ip", "") for i in status.get("hostIPs") or []),
        "status.podIPs": ",".join(i.get("ip", "") for i in status.get("podIPs") or []),
    }
    if path in simple:
        return str(simple[path] or "")
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    return ""


class ContainerView:
    """Environment and mounted files of `container` in `pod`, read from the store as the kubelet would."""

    def __init__(
        self, store: Any, pod: Obj, container: Obj, files: ContainerFiles, kubelet: Any = None
    ) -> None:
        self.store = store
        self.kubelet = kubelet
        """The kubelet that runs the pod: it holds the projected tokens and the published CSI volumes."""
        self.pod = pod
        self.container = container
        self.files = files
        self.namespace = str(pod["metadata"].get("namespace") or "default")

    def _get(self, plural: str, name: str) -> Obj | None:
        rt = self.store.resource("v1", plural)
        found: Obj | None = self.store.try_get(rt, name, self.namespace)
        return found

    def _data(self, plural: str, name: str) -> dict[str, str] | None:
        obj = self._get(plural, name)
        if obj is None:
            return None
        if plural == "secrets":
            out = {
                k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()
            }
            out.update(obj.get("stringData") or {})
            return out
        return {str(k): str(v) for k, v in (obj.get("data") or {}).items()}

    # ---- environment ---------------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        spec = self.pod.get("spec") or {}
        env: dict[str, str] = {
            "PATH": DEFAULT_PATH,
            "HOSTNAME": str(spec.get("hostname") or self.pod["metadata"]["name"]),
        }
        declared: dict[str, str] = {}
        for source in self.container.get("envFrom") or []:
            prefix = str(source.get("prefix") or "")
            for kind, plural in (("configMapRef", "configmaps"), ("secretRef", "secrets")):
                ref = source.get(kind)
                if ref:
                    for key, text in (self._data(plural, str(ref.get("name"))) or {}).items():
                        declared[prefix + key] = text
        for var in self.container.get("env") or []:
            name = str(var.get("name"))
            if "value" in var or not var.get("valueFrom"):
                declared[name] = expand_references(str(var.get("value") or ""), {**env, **declared})
                continue
            value_from = var["valueFrom"]
            value: str | None = None
            if value_from.get("fieldRef"):
                value = _field_ref(self.pod, str(value_from["fieldRef"].get("fieldPath")))
            elif value_from.get("resourceFieldRef"):
                resource = str(value_from["resourceFieldRef"].get("resource", ""))
                kind, _, what = resource.partition(".")
                value = str(((self.container.get("resources") or {}).get(kind) or {}).get(what, "0"))
            else:
                for kind, plural in (("configMapKeyRef", "configmaps"), ("secretKeyRef", "secrets")):
                    ref = value_from.get(kind)
                    if ref:
                        value = (self._data(plural, str(ref.get("name"))) or {}).get(str(ref.get("key")))
            if value is not None:
                declared[name] = value
        env.update(declared)
        if spec.get("enableServiceLinks", True):
            for key, value in self._service_links():
                env.setdefault(key, value)
        for key, value in _service_variables("kubernetes", API_SERVICE_IP, [{"name": "https", "port": 443}]):
            env.setdefault(key, value)
        env.setdefault("HOME", "/root")
        return env

    def _service_links(self) -> Iterator[tuple[str, str]]:
        rt = self.store.resource("v1", "services")
        for svc in self.store.list_page(rt, self.namespace).items:
            spec = svc.get("spec") or {}
            ip = spec.get("clusterIP")
            if not ip or ip == "None" or spec.get("type") == "ExternalName":
                continue
            yield from _service_variables(svc["metadata"]["name"], str(ip), spec.get("ports") or [])

    # ---- files ---------------------------------------------------------------------------------------
    def mounts(self) -> dict[str, bytes]:
        """Every file the container's mounts provide, by absolute path."""
        meta = self.pod["metadata"]
        spec = self.pod.get("spec") or {}
        ip = str((self.pod.get("status") or {}).get("podIP") or "")
        hostname = str(spec.get("hostname") or meta["name"])
        files: dict[str, bytes] = {
            "/etc/hostname": f"{hostname}\n".encode(),
            "/etc/hosts": (
                "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
                f"ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\n{ip}\t{hostname}\n"
            ).encode(),
            "/etc/resolv.conf": (
                f"search {self.namespace}.svc.{CLUSTER_DOMAIN} svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}\n"
                f"nameserver {CLUSTER_DNS_IP}\noptions ndots:5\n"
            ).encode(),
        }
        volumes = {str(v.get("name")): v for v in spec.get("volumes") or []}
        for mount in self.container.get("volumeMounts") or []:
            volume = volumes.get(str(mount.get("name")))
            if volume is None:
                continue
            base = str(mount.get("mountPath") or "/")
            sub = str(mount.get("subPath") or "")
            contents = self._volume_files(volume)
            for rel, data in contents.items():
                if sub:
                    if rel == sub:
                        files[base] = data
                    elif rel.startswith(sub + "/"):
                        files[posixpath.join(base, rel[len(sub) + 1 :])] = data
                else:
                    files[posixpath.join(base, rel)] = data
        automount = spec.get("automountServiceAccountToken", True)
        if automount and not any(
            str(m.get("mountPath")) == SA_MOUNT for m in self.container.get("volumeMounts") or []
        ):
            files.update({posixpath.join(SA_MOUNT, k): v for k, v in self._token_files().items()})
        return files

    def mount_points(self) -> set[str]:
        return {str(m.get("mountPath")) for m in self.container.get("volumeMounts") or []}

    def _volume_files(self, volume: Obj) -> dict[str, bytes]:
        for kind, plural in (("configMap", "configmaps"), ("secret", "secrets")):
            source = volume.get(kind)
            if source is not None:
                name = str(source.get("name") or source.get("secretName") or "")
                return _project(self._data(plural, name) or {}, source.get("items"))
        projected = volume.get("projected")
        if projected is not None:
            out: dict[str, bytes] = {}
            for source in projected.get("sources") or []:
                if source.get("serviceAccountToken"):
                    token = source["serviceAccountToken"]
                    out[str(token.get("path") or "token")] = self._token(
                        token.get("audience"), int(token.get("expirationSeconds") or 3600)
                    )
                for kind, plural in (("configMap", "configmaps"), ("secret", "secrets")):
                    if source.get(kind):
                        ref = source[kind]
                        out.update(_project(self._data(plural, str(ref.get("name"))) or {}, ref.get("items")))
                if source.get("downwardAPI"):
                    out.update(self._downward(source["downwardAPI"]))
            return out
        if volume.get("downwardAPI") is not None:
            return self._downward(volume["downwardAPI"])
        if volume.get("csi") is not None and self.kubelet is not None:
            return dict(self.kubelet.csi_files(self.pod, str(volume.get("name"))))
        return {}

    def _downward(self, source: Obj) -> dict[str, bytes]:
        return {
            str(item.get("path")): _field_ref(
                self.pod, str((item.get("fieldRef") or {}).get("fieldPath"))
            ).encode()
            for item in source.get("items") or []
            if item.get("fieldRef")
        }

    def _token_files(self) -> dict[str, bytes]:
        ca = self._data("configmaps", "kube-root-ca.crt") or {}
        return {
            "token": self._token(None, 3607),
            "namespace": self.namespace.encode(),
            "ca.crt": str(ca.get("ca.crt", "")).encode(),
        }

    def _token(self, audience: str | None, seconds: int) -> bytes:
        tokens = getattr(self.store, "tokens", None)
        spec = self.pod.get("spec") or {}
        sa_name = str(spec.get("serviceAccountName") or "default")
        sa = self._get("serviceaccounts", sa_name)
        if tokens is None or sa is None:
            return b""
        if self.kubelet is not None:
            held = self.kubelet.projected_token(self.pod, audience, seconds)
            if held is not None:
                return str(held).encode()
        meta = self.pod["metadata"]
        bound = {"kind": "Pod", "apiVersion": "v1", "name": meta["name"], "uid": meta.get("uid")}
        audiences = [audience] if audience else [tokens.issuer]
        token, _ = tokens.issue(
            self.namespace, sa_name, sa["metadata"]["uid"], audiences, max(seconds, 600), bound
        )
        return str(token).encode()

    # ---- the merged view -----------------------------------------------------------------------------
    def read(self, path: str) -> bytes | None:
        path = posixpath.normpath(path)
        if path in self.files.removed:
            return None
        if path in self.files.written:
            return self.files.written[path]
        return self.mounts().get(path)

    def all_files(self) -> dict[str, bytes]:
        files = {p: d for p, d in self.mounts().items() if p not in self.files.removed}
        files.update(self.files.written)
        return files

    def is_dir(self, path: str) -> bool:
        path = posixpath.normpath(path)
        if path == "/" or path in self.files.directories or path in _STANDARD_DIRS:
            return path not in self.files.removed
        if path in self.mount_points() and self.read(path) is None:
            return True
        prefix = path.rstrip("/") + "/"
        return any(p.startswith(prefix) for p in self.all_files())

    def listing(self, path: str) -> list[str]:
        """Names directly under directory `path`."""
        prefix = posixpath.normpath(path).rstrip("/") + "/"
        names = set()
        for candidate in [*self.all_files(), *self.files.directories, *_STANDARD_DIRS, *self.mount_points()]:
            if (
                candidate.startswith(prefix)
                and candidate != prefix.rstrip("/")
                and candidate not in self.files.removed
            ):
                names.add(candidate[len(prefix) :].split("/", 1)[0])
        return sorted(n for n in names if n)

    def write(self, path: str, data: bytes) -> None:
        path = posixpath.normpath(path)
        self.files.removed.discard(path)
        self.files.written[path] = data
        parent = posixpath.dirname(path)
        while parent not in ("/", ""):
            self.files.directories.add(parent)
            parent = posixpath.dirname(parent)

    def make_dir(self, path: str) -> None:
        path = posixpath.normpath(path)
        self.files.removed.discard(path)
        self.files.directories.add(path)

    def remove(self, path: str) -> None:
        path = posixpath.normpath(path)
        prefix = path.rstrip("/") + "/"
        for candidate in [path, *(p for p in self.all_files() if p.startswith(prefix))]:
            self.files.written.pop(candidate, None)
            self.files.removed.add(candidate)
        self.files.directories = {d for d in self.files.directories if d != path and not d.startswith(prefix)}


_STANDARD_DIRS = frozenset(
    {
        "/bin",
        "/etc",
        "/home",
        "/root",
        "/tmp",
        "/usr",
        "/usr/bin",
        "/usr/local",
        "/usr/local/bin",
        "/var",
        "/var/run",
    }
)


def _project(data: Mapping[str, str], items: list[Obj] | None) -> dict[str, bytes]:
    if not items:
        return {k: v.encode() for k, v in data.items()}
    return {str(i.get("path")): data[str(i.get("key"))].encode() for i in items if str(i.get("key")) in data}


def _service_variables(name: str, ip: str, ports: list[Obj]) -> Iterator[tuple[str, str]]:
    """The docker-links variables the kubelet sets for each Service (`FOO_SERVICE_HOST`, `FOO_PORT_80_TCP`…)."""
    if not ports:
        return
    prefix = name.upper().replace("-", "_")
    first = ports[0]
    yield f"{prefix}_SERVICE_HOST", ip
    yield f"{prefix}_SERVICE_PORT", str(first.get("port"))
    for port in ports:
        if port.get("name"):
            yield (
                f"{prefix}_SERVICE_PORT_{str(port['name']).upper().replace('-', '_')}",
                str(port.get("port")),
            )
    proto = str(first.get("protocol") or "TCP")
    yield f"{prefix}_PORT", f"{proto.lower()}://{ip}:{first.get('port')}"
    for port in ports:
        protocol = str(port.get("protocol") or "TCP")
        base = f"{prefix}_PORT_{port.get('port')}_{protocol}"
        yield base, f"{protocol.lower()}://{ip}:{port.get('port')}"
        yield f"{base}_PROTO", protocol.lower()
        yield f"{base}_PORT", str(port.get("port"))
        yield f"{base}_ADDR", ip
