"""The cluster network as a process in a pod sees it: cluster DNS names, Service and pod IPs, and `curl`.

`resolve_address` turns what a pod would dial (`localhost:5000`, `svc.ns.svc.cluster.local`, a Service's
ClusterIP and port, a pod IP, `kubernetes.default.svc`) into the local port of the simulated process that
answers it, or into curl's error for a name that does not resolve or a port nobody listens on. External
names do not resolve: the simulated cluster has no egress.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp

from pytest_aksai.sim._core._container_fs import API_SERVICE_IP, CLUSTER_DOMAIN
from pytest_aksai.sim._core._endpoints import _resolve_port
from pytest_aksai.sim._core._podutil import is_ready

Obj = dict[str, Any]
Writer = Callable[[bytes], Awaitable[None]]
CURL_VERSION = "8.5.0"


class _Ports(Protocol):
    def listening_port(self, pod: Obj, port: int) -> int | None: ...


@dataclass(frozen=True)
class Target:
    """Where a dial lands: a local port (and TLS for the API server), or curl's error."""

    port: int | None = None
    tls: bool = False
    error_code: int = 0
    error: str = ""


def _refused(host: str, port: int) -> Target:
    return Target(
        error_code=7, error=f"Failed to connect to {host} port {port} after 0 ms: Couldn't connect to server"
    )


def resolve_address(store: Any, pod: Obj, host: str, port: int, ports: _Ports) -> Target:
    namespace = str(pod["metadata"].get("namespace") or "default")
    pods_rt = store.resource("v1", "pods")
    services_rt = store.resource("v1", "services")
    if host in ("localhost", "127.0.0.1", "::1", "[::1]") or host == (pod.get("status") or {}).get("podIP"):
        local = ports.listening_port(pod, port)
        return Target(local) if local else _refused(host, port)
    labels = host.rstrip(".").split(".")
    suffix = ["svc", *CLUSTER_DOMAIN.split(".")]
    if labels[-len(suffix) :] == suffix:
        labels = labels[: -len(suffix)]
    elif labels[-1:] == ["svc"]:
        labels = labels[:-1]
    elif len(labels) > 2 and not all(p.isdigit() for p in labels):
        return Target(error_code=6, error=f"Could not resolve host: {host}")
    if all(p.isdigit() for p in host.split(".")) and len(host.split(".")) == 4:
        if host == API_SERVICE_IP:
            return _api_server(port, host)
        for candidate in store.list_page(pods_rt, None).items:
            if (candidate.get("status") or {}).get("podIP") == host:
                local = ports.listening_port(candidate, port)
                return Target(local) if local else _refused(host, port)
        for svc in store.list_page(services_rt, None).items:
            if (svc.get("spec") or {}).get("clusterIP") == host:
                return _service(store, svc, port, host, ports)
        return _refused(host, port)
    if len(labels) == 3:  # <pod hostname>.<headless service>.<namespace>
        hostname, subdomain, ns = labels
        for candidate in store.list_page(pods_rt, ns).items:
            spec = candidate.get("spec") or {}
            if spec.get("hostname") == hostname and spec.get("subdomain") == subdomain:
                local = ports.listening_port(candidate, port)
                return Target(local) if local else _refused(host, port)
        return Target(error_code=6, error=f"Could not resolve host: {host}")
    name, ns = labels[0], labels[1] if len(labels) > 1 else namespace
    if (name, ns) == ("kubernetes", "default"):
        return _api_server(port, host)
    svc = store.try_get(services_rt, name, ns) if len(labels) <= 2 else None
    if svc is None:
        return Target(error_code=6, error=f"Could not resolve host: {host}")
    return _service(store, svc, port, host, ports)


def _api_server(port: int, host: str) -> Target:
    return Target(-1, tls=True) if port == 443 else _refused(host, port)


def _service(store: Any, svc: Obj, port: int, host: str, ports: _Ports) -> Target:
    spec = svc.get("spec") or {}
    headless = spec.get("clusterIP") == "None"
    service_port = next((p for p in spec.get("ports") or [] if int(p.get("port") or 0) == port), None)
    if service_port is None and not headless:
        return _refused(host, port)
    selector = spec.get("selector") or {}
    if not selector:
        return _refused(host, port)
    namespace = svc["metadata"]["namespace"]
    candidates = [
        p
        for p in store.list_page(store.resource("v1", "pods"), namespace).items
        if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
        and is_ready(p)
        and not p["metadata"].get("deletionTimestamp")
    ]
    for candidate in sorted(candidates, key=lambda p: p["metadata"]["name"]):
        pod_port = port if service_port is None else _resolve_port(service_port, candidate)
        local = ports.listening_port(candidate, pod_port) if pod_port else None
        if local:
            return Target(local)
    return _refused(host, port)


@dataclass
class HttpExchange:
    """One `curl` (or `wget -qO-`) invocation."""

    url: str = ""
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes | None = None
    silent: bool = False
    show_error: bool = False
    fail: bool = False
    include: bool = False
    head: bool = False
    insecure: bool = False
    output: str | None = None
    write_out: str = ""
    max_time: float | None = None
    usage_error: str = ""
    wget: bool = False

    @property
    def parts(self) -> Any:
        url = self.url if "://" in self.url else f"http://{self.url}"
        return urlsplit(url)

    @property
    def host(self) -> str:
        return str(self.parts.hostname or "")

    @property
    def port(self) -> int:
        parts = self.parts
        return int(parts.port or (443 if parts.scheme == "https" else 80))

    @classmethod
    def from_argv(cls, argv: list[str]) -> HttpExchange:
        ex = cls(wget=argv[0].rsplit("/", 1)[-1] == "wget")
        args: list[str] = []
        for arg in argv[1:]:
            args.extend(arg.split("=", 1) if arg.startswith("--") and "=" in arg else [arg])
        takes_value = {"-X", "-H", "-d", "-o", "-w", "-m", "-O", "-u", "--cacert", "-A"}
        i = 0
        while i < len(args):
            arg = args[i]
            value = args[i + 1] if i + 1 < len(args) else ""
            long_values = {
                "--request": "-X",
                "--header": "-H",
                "--data": "-d",
                "--data-raw": "-d",
                "--data-binary": "-d",
                "--output": "-o",
                "--write-out": "-w",
                "--max-time": "-m",
                "--user-agent": "-A",
            }
            if arg in long_values or arg in takes_value:
                if i + 1 >= len(args):
                    return cls(usage_error=f"curl: option {arg}: requires parameter\n")
                ex._option(long_values.get(arg, arg), value)
                i += 2
                continue
            if arg.startswith("--"):
                flag = {"--silent": "s", "--show-error": "S", "--fail": "f", "--include": "i", "--head": "I"}
                ex._flags(flag.get(arg, "k" if arg == "--insecure" else "q" if arg == "--quiet" else ""))
            elif arg.startswith("-") and len(arg) > 1:
                letters = arg[1:]
                if letters[-1] in "XHdowmOA" and i + 1 < len(args):
                    ex._flags(letters[:-1])
                    ex._option("-" + letters[-1], value)
                    i += 2
                    continue
                ex._flags(letters)
            else:
                ex.url = arg
            i += 1
        if not ex.url:
            ex.usage_error = (
                "curl: no URL specified\ncurl: try 'curl --help' or 'curl --manual' for more information\n"
                if not ex.wget
                else "wget: missing URL\n"
            )
        return ex

    def _flags(self, letters: str) -> None:
        for letter in letters:
            if letter in "sq":
                self.silent = True
            elif letter == "S":
                self.show_error = True
            elif letter == "f":
                self.fail = True
            elif letter == "i":
                self.include = True
            elif letter == "I":
                self.head, self.method = True, "HEAD"
            elif letter == "k":
                self.insecure = True

    def _option(self, option: str, value: str) -> None:
        if option == "-X":
            self.method = value
        elif option == "-H" and ":" in value:
            name, _, content = value.partition(":")
            self.headers[name.strip()] = content.strip()
        elif option == "-d":
            self.data = value.encode()
            if self.method == "GET":
                self.method = "POST"
            self.headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif option in ("-o", "-O"):
            self.output = value
        elif option == "-w":
            self.write_out = value
        elif option == "-m":
            self.max_time = float(value)
        elif option == "--cacert":
            self.insecure = True  # the cluster CA the pod mounts is the one the API server's cert chains to
        elif option == "-A":
            self.headers["User-Agent"] = value

    async def perform(self, target: Target, out: Writer, err: Writer, ctx: Any) -> int:
        name = "wget" if self.wget else "curl"
        if target.error_code:
            if self.wget:
                await err(b"wget: can't connect to remote host: Connection refused\n")
                return 1
            if not self.silent or self.show_error:
                await err(f"curl: ({target.error_code}) {target.error}\n".encode())
            return target.error_code
        parts = self.parts
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        headers = {
            "Host": parts.netloc,
            "User-Agent": f"{name}/{CURL_VERSION}",
            "Accept": "*/*",
            **self.headers,
        }
        tls: ssl.SSLContext | bool = False
        if target.tls:
            if not self.insecure:
                await err(
                    b"curl: (60) SSL certificate problem: unable to get local issuer certificate\n"
                    b"More details here: https://curl.se/docs/sslcerts.html\n"
                )
                return 60
            base = str(ctx.server_url)
        else:
            base = f"http://127.0.0.1:{target.port}"
        timeout = aiohttp.ClientTimeout(total=self.max_time, sock_connect=5)
        started = time.monotonic()
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session,
                session.request(
                    self.method, base + path, headers=headers, data=self.data, ssl=tls, allow_redirects=False
                ) as response,
            ):
                body = b"" if self.head else await response.read()
                status = response.status
                head = f"HTTP/1.1 {status} {response.reason}\r\n" + "".join(
                    f"{k}: {v}\r\n" for k, v in response.headers.items()
                )
        except TimeoutError:
            spent = int((time.monotonic() - started) * 1000)
            await err(
                f"curl: (28) Operation timed out after {spent} milliseconds with 0 bytes received\n".encode()
            )
            return 28
        except (aiohttp.ClientError, OSError):
            await err(b"curl: (56) Recv failure: Connection reset by peer\n")
            return 56
        if self.fail and status >= 400:
            if not self.silent or self.show_error:
                await err(f"curl: (22) The requested URL returned error: {status}\n".encode())
            return 22
        if self.wget and status >= 400:
            await err(f"wget: server returned error: HTTP/1.1 {status} {response.reason}\n".encode())
            return 1
        payload = ((head + "\r\n").encode() if self.include or self.head else b"") + body
        if self.output and self.output not in ("-", "/dev/null"):
            pass  # written nowhere visible: the simulated container keeps no downloaded files
        elif self.output != "/dev/null":
            await out(payload)
        if not self.silent and not self.wget:
            await err(_progress(len(body)).encode())
        if self.write_out:
            text = self.write_out.replace("%{http_code}", str(status)).replace(
                "%{size_download}", str(len(body))
            )
            await out(text.replace("\\n", "\n").encode())
        await asyncio.sleep(0)
        return 0


def _progress(size: int) -> str:
    return (
        "  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current\n"
        "                                 Dload  Upload   Total   Spent    Left  Speed\n"
        f"100 {size:>5}  100 {size:>5}    0     0  {size * 10:>5}      0 --:--:-- --:--:-- --:--:-- {size * 10:>5}\n"
    )
