"""Connecting to a cluster through the official `kubernetes` client, with one clear paragraph per failure."""

from __future__ import annotations

import math
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from pytest_aksai._errors import ConnectError, ReadOnlyRefusal
from pytest_aksai._public import public
from pytest_aksai.kube import _rest
from pytest_aksai.kube._rest import Kind
from pytest_aksai.kube._retry import api_retry, clock_of

API_GROUPS_OF_THE_LAB: Mapping[str, str] = {
    "kaito.sh": "KAITO",
    "keda.sh": "KEDA",
    "http.keda.sh": "the KEDA HTTP add-on",
    "karpenter.sh": "Karpenter (NAP)",
    "karpenter.azure.com": "the AKS Karpenter provider (NAP)",
    "secrets-store.csi.x-k8s.io": "the Secrets Store CSI driver",
}


@public
@dataclass
class Cluster:
    """A reachable cluster: an authenticated API client and what the API server serves."""

    profile: str
    provider: str
    context: str
    server_url: str
    _api: k8s.ApiClient = field(repr=False)
    served_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """API group → served versions, preferred first; the core group is `""`."""
    time_scale: float = 1.0
    """Cluster seconds per wall second: 1 on a live cluster, the advertised scale on a simulated one."""
    server_version: str = ""
    """The API server's `gitVersion` (e.g. `v1.30.6`)."""
    readonly: bool = False
    """A read-only run: requests that would write raise `ReadOnlyRefusal` before they are sent."""

    def serves(self, group: str, version: str | None = None) -> bool:
        versions = self.served_groups.get(group)
        return versions is not None and (version is None or version in versions)

    def missing_api_reason(self, group: str, version: str | None = None) -> str | None:
        """None when served; otherwise a reason to skip, e.g. `KEDA is not installed on cluster 'lab' (...)`."""
        if self.serves(group, version):
            return None
        what = API_GROUPS_OF_THE_LAB.get(group, f"the API group {group}")
        if version is not None and group in self.served_groups:
            served = ", ".join(self.served_groups[group])
            return f"{what} on cluster {self.profile!r} does not serve {group}/{version} (served: {served})"
        return f"{what} is not installed on cluster {self.profile!r} (no {group} API group)"

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object as the API server sends it, or None when it does not exist."""
        return _rest.get(self._api, kind, name, namespace)

    def items(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        return _rest.items(
            self._api, kind, namespace, label_selector=label_selector, field_selector=field_selector
        )

    def raw(self, path: str, **query: Any) -> str:
        """GET any API path as text (e.g. a pod's log or a service proxy path)."""
        return _rest.raw_text(self._api, path, query=query)

    def close(self) -> None:
        self._api.close()


_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_STREAMS = ("/portforward", "/exec", "/attach")
"""WebSocket upgrades are GETs that RBAC authorizes as `create` (and that reach into pods): not reads."""
_REVIEWS = ("/selfsubjectaccessreviews", "/selfsubjectrulesreviews", "/selfsubjectreviews")
"""Self reviews are POSTs that persist nothing: a read-only run sends them to learn what it may do."""
_WRITE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


_READONLY_FLAG = "aksai_readonly"


def is_readonly(api_client: k8s.ApiClient) -> bool:
    """Whether the run is read-only; kept on the client's configuration, which its copies share."""
    return bool(getattr(api_client.configuration, _READONLY_FLAG, False))


class _ApiClient(k8s.ApiClient):
    """The official client with the read-only gate: every request of the kube layer, typed (`CoreV1Api`) or
    plain (`_rest`), passes `call_api`, so this is the one place where a read-only run refuses writes
    (port-forwards, on clients of their own, check `is_readonly` in `PortForward`)."""

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if is_readonly(self):
            path = urllib3.util.parse_url(url).path or ""
            if path.endswith(_STREAMS) or (
                method.upper() not in _READ_METHODS and not path.endswith(_REVIEWS)
            ):
                verb = "POST" if method.upper() in _READ_METHODS else method.upper()
                raise ReadOnlyRefusal(_describe_write(verb, path))
        return super().call_api(method, url, *args, **kwargs)


def _describe_write(method: str, path: str) -> str:
    """`create pods in namespace 'x'`, `delete nodeclaims.karpenter.sh 'gpu-1'` from a request's path."""
    parts = [p for p in path.split("/") if p]
    parts = parts[2:] if parts[:1] == ["api"] else parts[3:] if parts[:1] == ["apis"] else parts
    group = path.split("/")[2] if path.startswith("/apis/") else ""
    namespace = ""
    if len(parts) >= 3 and parts[0] == "namespaces":
        namespace, parts = parts[1], parts[2:]
    resource = parts[0] if parts else path
    name = parts[1] if len(parts) > 1 else ""
    subresource = parts[2] if len(parts) > 2 else ""
    shown = (f"{resource}.{group}" if group else resource) + (f"/{subresource}" if subresource else "")
    text = f"{_WRITE_VERBS.get(method, method.lower())} {shown}"
    if name:
        text += f" {name!r}"
    if namespace:
        text += f" in namespace {namespace!r}"
    return text


def _kubeconfig_paths(kubeconfig: Path | None, env: Mapping[str, str]) -> list[Path]:
    if kubeconfig is not None:
        return [kubeconfig]
    from_env = env.get("KUBECONFIG")
    if from_env:
        return [Path(p).expanduser() for p in from_env.split(os.pathsep) if p]
    return [Path("~/.kube/config").expanduser()]


def load_client(
    *, profile: str, kubeconfig: Path | None, context: str | None, env: Mapping[str, str] | None = None
) -> tuple[k8s.ApiClient, str, str]:
    """Build an API client from a kubeconfig and context, without contacting the cluster."""
    paths = _kubeconfig_paths(kubeconfig, os.environ if env is None else env)
    existing = [p for p in paths if p.is_file()]
    if not existing:
        shown = ", ".join(str(p) for p in paths)
        raise ConnectError(
            f"Cluster profile {profile!r}: the kubeconfig file {shown} does not exist. Set --aksai-kubeconfig "
            f"(or the profile's kubeconfig key) to an existing file, e.g. the one written by "
            f"`az aks get-credentials --file PATH`.",
            configuration_problem=True,
        )
    config_file = os.pathsep.join(str(p) for p in existing)
    try:
        contexts, current = k8s_config.list_kube_config_contexts(config_file=config_file)
    except (ConfigException, OSError, ValueError) as exc:
        raise ConnectError(
            f"Cluster profile {profile!r}: the kubeconfig {config_file} cannot be read ({exc}). "
            "Fix or regenerate it.",
            configuration_problem=True,
        ) from None
    names = [c["name"] for c in contexts or []]
    chosen = context or (current or {}).get("name")
    if not chosen:
        raise ConnectError(
            f"Cluster profile {profile!r}: the kubeconfig {config_file} has no current context and none was "
            f"given; known contexts: {', '.join(names) or 'none'}. Set --aksai-context or the profile's "
            "context key.",
            configuration_problem=True,
        )
    if chosen not in names:
        raise ConnectError(
            f"Cluster profile {profile!r}: context {chosen!r} is not in the kubeconfig {config_file}; known "
            f"contexts: {', '.join(names) or 'none'}. Set --aksai-context (or the profile's context key) to one "
            "of them.",
            configuration_problem=True,
        )
    configuration = k8s.Configuration()
    try:
        k8s_config.load_kube_config(
            config_file=config_file, context=chosen, client_configuration=configuration, persist_config=False
        )
    except (ConfigException, OSError, ValueError) as exc:
        raise ConnectError(
            f"Cluster profile {profile!r}: context {chosen!r} of {config_file} cannot be loaded ({exc}). "
            "Fix that context's cluster and user entries, or log in again.",
            configuration_problem=True,
        ) from None
    configuration.retries = api_retry()  # read when the client builds its connection pool
    return _ApiClient(configuration), chosen, str(configuration.host)


def connect(
    *,
    profile: str,
    provider: str,
    kubeconfig: Path | None,
    context: str | None,
    timeout: float = 10.0,
    env: Mapping[str, str] | None = None,
    readonly: bool = False,
) -> Cluster:
    """Connect, check that the cluster answers and lets us read, and discover its API groups. `readonly`:
    from then on the client refuses every request that would write (`ReadOnlyRefusal`)."""
    api_client, chosen, server = load_client(profile=profile, kubeconfig=kubeconfig, context=context, env=env)
    setattr(api_client.configuration, _READONLY_FLAG, readonly)
    where = f"the API server {server} (context {chosen!r} of cluster profile {profile!r})"
    probe_timeout = (min(timeout, 5.0), timeout)
    try:
        version = k8s.VersionApi(api_client).get_code(_request_timeout=probe_timeout)
        served = _discover(api_client, probe_timeout)
        k8s.CoreV1Api(api_client).list_namespace(limit=1, _request_timeout=probe_timeout)
    except ApiException as exc:
        api_client.close()
        raise ConnectError(_describe_api_exception(exc, where), configuration_problem=False) from None
    except urllib3.exceptions.MaxRetryError as exc:
        api_client.close()
        raise ConnectError(
            _describe_transport_error(exc.reason, where), configuration_problem=False
        ) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        api_client.close()
        raise ConnectError(_describe_transport_error(exc, where), configuration_problem=False) from None
    time_scale = _advertised_time_scale(api_client)
    clock = clock_of(api_client.configuration.retries)
    if clock is not None:
        clock.time_scale = time_scale
    return Cluster(
        profile=profile,
        provider=provider,
        context=chosen,
        server_url=server,
        _api=api_client,
        served_groups=served,
        time_scale=time_scale,
        server_version=str(getattr(version, "git_version", "") or ""),
        readonly=readonly,
    )


SIM_CONFIGMAP = ("kube-system", "aksai-sim")
"""Where the simulated cluster advertises itself; absent on a live cluster. The names are the sim's wire
contract (`pytest_aksai.sim.contract`, docs/reference/sim-contract.md), repeated here because `kube` reaches
any cluster only over the wire; `tests/plugin/test_sim_contract.py` keeps the two equal."""
SIM_TIME_SCALE_KEY = "timeScale"


def _advertised_time_scale(api_client: k8s.ApiClient) -> float:
    """The simulated cluster advertises its time scale; a live cluster runs at 1."""
    namespace, name = SIM_CONFIGMAP
    try:
        cm = k8s.CoreV1Api(api_client).read_namespaced_config_map(name, namespace)
    except ApiException:
        return 1.0
    try:
        scale = float((cm.data or {}).get(SIM_TIME_SCALE_KEY, 1.0))
    except ValueError:
        return 1.0
    return scale if math.isfinite(scale) and scale > 0 else 1.0


def _discover(api_client: k8s.ApiClient, timeout: Any) -> dict[str, tuple[str, ...]]:
    core = k8s.CoreApi(api_client).get_api_versions(_request_timeout=timeout)
    served: dict[str, tuple[str, ...]] = {"": tuple(core.versions)}
    for group in k8s.ApisApi(api_client).get_api_versions(_request_timeout=timeout).groups:
        preferred = group.preferred_version.version if group.preferred_version else None
        versions = [v.version for v in group.versions]
        if preferred in versions:
            versions.remove(preferred)
            versions.insert(0, preferred)
        served[group.name] = tuple(versions)
    return served


def _describe_api_exception(exc: ApiException, where: str) -> str:
    if exc.status == 401:
        return (
            f"{where} rejected the credentials (401 Unauthorized). The token or client certificate in "
            "the kubeconfig is missing, expired or for another cluster: log in again (for AKS: "
            "`az aks get-credentials`, and `kubelogin convert-kubeconfig` for Entra ID clusters)."
        )
    if exc.status == 403:
        return (
            f"{where} accepted the credentials but forbids what the suite needs (403 Forbidden: "
            f"{_status_message(exc)}). Grant the identity at least cluster-wide read access "
            "(e.g. the `view` ClusterRole), and write access for disruptive checks."
        )
    return (
        f"{where} answered HTTP {exc.status} {exc.reason} to a basic request ({_status_message(exc)}). "
        "Check that the URL points at a Kubernetes API server and that it is healthy."
    )


def _status_message(exc: ApiException) -> str:
    import json

    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        return str(exc.reason)
    return str(body.get("message") or exc.reason)


def _describe_transport_error(error: BaseException | None, where: str) -> str:
    if isinstance(error, urllib3.exceptions.SSLError | ssl.SSLError):
        return (
            f"{where}: the TLS handshake failed ({error}). The kubeconfig's certificate-authority data "
            "does not match the server's certificate, or the URL is wrong: fetch the credentials again."
        )
    if isinstance(error, urllib3.exceptions.NewConnectionError | ConnectionError):
        pass
    elif isinstance(error, urllib3.exceptions.TimeoutError | TimeoutError):
        return (
            f"{where} did not answer in time ({error}). Check the URL, your network path to it (VPN, "
            "private cluster, authorized IP ranges), or raise --aksai-timeout-scale."
        )
    return (
        f"{where} is unreachable ({error}). Check that the cluster is running and that the URL is "
        "reachable from this machine (VPN, private cluster, authorized IP ranges)."
    )
