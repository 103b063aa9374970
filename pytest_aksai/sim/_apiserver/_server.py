"""The HTTP server: authentication, authorization, logs, tokens, proxying; wires the handlers into aiohttp."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
import jwt
from aiohttp import web

from pytest_aksai.sim.contract import HTTP_PORT_ANNOTATION as HTTP_PORT_ANNOTATION

from ._errors import ApiError, FieldError, invalid, not_found
from ._http import discovery_routes, error_response, json_response
from ._rbac import (
    SELF_REVIEWS,
    Attributes,
    AuditLog,
    Authorizer,
    Identity,
    access_review_status,
    request_verb,
    rules_review_status,
)
from ._store import Store, Watch
from ._tokens import DEFAULT_EXPIRATION_SECONDS, MIN_EXPIRATION_SECONDS, TokenIssuer
from ._types import ResourceType

_log = logging.getLogger(__name__)
_PUBLIC_PATHS = frozenset(
    {
        "/version",
        "/version/",
        "/healthz",
        "/livez",
        "/readyz",
        "/.well-known/openid-configuration",
        "/openid/v1/jwks",
    }
)
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
        "authorization",
    }
)
_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
USER_KEY = web.RequestKey("aksai-user", str)
"""The authenticated service account's username; absent for the admin and the sim's own token."""
IDENTITY_KEY = web.RequestKey("aksai-identity", Identity)
ADMIN_USER = "masterclient"
"""Who the kubeconfig's admin token is (an AKS cluster-admin kubeconfig's user)."""
ADMIN = Identity(ADMIN_USER, ("system:masters", "system:authenticated"))
INTERNAL = Identity("system:aksai-sim", ("system:masters",))


class PodLogs:
    """Container log text, written by the simulated kubelet and read by `pods/<name>/log`."""

    def __init__(self) -> None:
        self._text: dict[tuple[str, str, str], str] = {}
        self._previous: dict[tuple[str, str, str], str] = {}
        self._changed: dict[tuple[str, str], asyncio.Event] = {}

    def append(self, namespace: str, pod: str, container: str, text: str) -> None:
        key = (namespace, pod, container)
        self._text[key] = self._text.get(key, "") + text
        event = self._changed.pop((namespace, pod), None)
        if event is not None:
            event.set()

    def read(self, namespace: str, pod: str, container: str, *, previous: bool = False) -> str | None:
        return (self._previous if previous else self._text).get((namespace, pod, container))

    def rotate(self, namespace: str, pod: str, container: str) -> None:
        """The container restarted: its log so far becomes the previous instance's."""
        key = (namespace, pod, container)
        self._previous[key] = self._text.pop(key, "")

    def forget(self, namespace: str, pod: str) -> None:
        for table in (self._text, self._previous):
            for key in [k for k in table if k[:2] == (namespace, pod)]:
                del table[key]

    async def wait(self, namespace: str, pod: str, seconds: float) -> None:
        event = self._changed.setdefault((namespace, pod), asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)


def _listens(pod: dict[str, Any], port: int) -> bool:
    """A pod that declares container ports listens on those only: a Service whose targetPort is another one
    reaches nothing, and the API server's proxy says so as upstream does (`error trying to reach service`)."""
    declared = {
        int(p["containerPort"])
        for c in (pod.get("spec") or {}).get("containers") or []
        for p in c.get("ports") or []
        if str(p.get("containerPort", "")).isdigit()
    }
    if not declared or port in declared:
        return True
    ip = (pod.get("status") or {}).get("podIP", "")
    raise ApiError(
        503,
        f"error trying to reach service: dial tcp {ip}:{port}: connect: connection refused",
        reason="ServiceUnavailable",
    )


class ApiServer:
    def __init__(
        self,
        store: Store,
        issuer: str,
        *,
        internal_token: str = "",
        middlewares: Sequence[Callable[..., Any]] = (),
    ) -> None:
        self.store = store
        self.tokens = TokenIssuer(issuer, store.clock)
        store.tokens = self.tokens
        self.pod_logs = PodLogs()
        self.authorizer = Authorizer(store)
        self.audit = AuditLog()
        self.watches: set[Watch] = set()
        self.bookmark_interval = 1.0
        """Wall seconds between watch bookmarks (a real server sends one about every minute)."""
        self.internal_token = internal_token
        self._client: aiohttp.ClientSession | None = None
        self.app = web.Application(
            middlewares=[self._auth_middleware, *middlewares], client_max_size=64 * 2**20
        )
        self.app.add_routes(
            [
                web.get("/.well-known/openid-configuration", self._openid_configuration),
                web.get("/openid/v1/jwks", self._jwks),
                *discovery_routes(self),
            ]
        )
        self.app.on_shutdown.append(self._on_shutdown)

    # ---- authentication / authorization ----------------------------------------------------------------
    @web.middleware
    async def _auth_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in _PUBLIC_PATHS:
            header = request.headers.get("Authorization", "")
            token = header[7:].strip() if header[:7].lower() == "bearer " else ""
            if token and token == self.tokens.admin_token:
                request[IDENTITY_KEY] = ADMIN
            elif token and token == self.internal_token:
                request[IDENTITY_KEY] = INTERNAL
            elif token and token == self.tokens.restricted_token:
                request[IDENTITY_KEY] = Identity(self.tokens.restricted_user, ("system:authenticated",))
            elif token:
                try:
                    user = str(self.tokens.verify(token)["sub"])
                except (jwt.PyJWTError, KeyError):
                    return error_response(ApiError(401, "Unauthorized"))
                request[USER_KEY] = user
                namespace = user.split(":")[2] if user.count(":") >= 3 else ""
                request[IDENTITY_KEY] = Identity(
                    user,
                    ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
                )
            else:
                return error_response(ApiError(401, "Unauthorized"))
        try:
            return await handler(request)
        except ApiError as error:
            return error_response(error)
        except (web.HTTPException, asyncio.CancelledError, ConnectionError):
            raise
        except Exception as exc:
            _log.exception("unexpected error serving %s %s", request.method, request.path)
            return error_response(
                ApiError(500, f"Internal error occurred: {exc}", details={"causes": [{"message": str(exc)}]})
            )

    def authorize(
        self,
        request: web.Request,
        rt: ResourceType,
        namespace: str | None,
        name: str | None,
        subresource: str | None = None,
    ) -> None:
        """RBAC (`_rbac`): `system:masters` (the admin and the sim's own token) may do anything, any other
        user what its bindings grant. Each decision is kept in the audit log."""
        identity = request.get(IDENTITY_KEY, ADMIN)
        verb = request_verb(
            request.method,
            named=name is not None,
            watch=request.query.get("watch") in ("1", "true"),
        )
        if subresource in ("exec", "attach", "portforward") and request.method == "GET":
            verb = "create"  # a WebSocket upgrade; kube-apiserver authorizes it as create (KEP-4006)
        attrs = Attributes(verb, rt.group, rt.plural, subresource or "", namespace or "", name or "")
        allowed = rt.plural in SELF_REVIEWS or self.authorizer.decide(identity, attrs)[0]
        self.audit.record(identity, attrs, allowed)
        if not allowed:
            raise self.authorizer.forbidden(identity, attrs, rt.group_resource)

    def self_review(self, request: web.Request, rt: ResourceType, body: dict[str, Any]) -> dict[str, Any]:
        """SelfSubjectReview (`kubectl auth whoami`) and SelfSubject{Access,Rules}Review (`kubectl auth can-i`)
        for the requester, decided by the same RBAC rules as its requests."""
        identity = request.get(IDENTITY_KEY, ADMIN)
        obj = {**body, "apiVersion": rt.api_version, "kind": rt.kind}
        obj["metadata"] = {**(body.get("metadata") or {}), "creationTimestamp": None}
        spec = body.get("spec") or {}
        if rt.kind == "SelfSubjectReview":
            obj["status"] = {"userInfo": {"username": identity.user, "groups": list(identity.groups)}}
        elif rt.kind == "SelfSubjectAccessReview":
            obj["status"] = access_review_status(self.authorizer, identity, spec)
        else:
            obj["status"] = rules_review_status(self.authorizer, identity, str(spec.get("namespace") or ""))
        return obj

    # ---- OIDC ------------------------------------------------------------------------------------------
    async def _openid_configuration(self, _: web.Request) -> web.Response:
        return json_response(self.tokens.openid_configuration())

    async def _jwks(self, _: web.Request) -> web.Response:
        return web.Response(text=json.dumps(self.tokens.jwks()), content_type="application/jwk-set+json")

    def token_request(self, namespace: str, name: str, body: Any) -> dict[str, Any]:
        sa_rt = self.store.storage_type("", "serviceaccounts")
        assert sa_rt is not None
        sa = self.store.try_get(sa_rt, name, namespace)
        if sa is None:
            raise not_found("serviceaccounts", "", name)
        spec = (body or {}).get("spec") or {}
        expiration = spec.get("expirationSeconds") or DEFAULT_EXPIRATION_SECONDS
        if not isinstance(expiration, int) or expiration < MIN_EXPIRATION_SECONDS:
            raise invalid(
                "TokenRequest",
                "authentication.k8s.io",
                name,
                [
                    FieldError(
                        "FieldValueInvalid",
                        "spec.expirationSeconds",
                        expiration,
                        "may not specify a duration less than 10 minutes",
                    )
                ],
            )
        audiences = list(spec.get("audiences") or [self.tokens.issuer])
        bound = spec.get("boundObjectRef")
        token, exp = self.tokens.issue(
            namespace, name, sa["metadata"]["uid"], audiences, int(expiration), bound
        )
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
            "spec": {"audiences": audiences, "expirationSeconds": int(expiration), "boundObjectRef": bound},
            "status": {
                "token": token,
                "expirationTimestamp": datetime.fromtimestamp(exp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        }

    # ---- pods/log --------------------------------------------------------------------------------------
    async def pod_log(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        pod_rt = self.store.storage_type("", "pods")
        assert pod_rt is not None
        pod = self.store.get_raw(pod_rt, name, namespace)
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        container = request.query.get("container")
        if not container:
            if len(containers) != 1:
                raise ApiError(
                    400,
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(str(c) for c in containers)}]",
                )
            container = str(containers[0])
        elif container not in containers and container not in [
            c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []
        ]:
            raise ApiError(400, f"container {container} is not valid for pod {name}")
        if _bool(request.query.get("previous")):
            previous = self.pod_logs.read(namespace, name, container, previous=True)
            if previous is None:
                raise ApiError(400, f'previous terminated container "{container}" in pod "{name}" not found')
            return web.Response(
                text=_tail(previous, request.query.get("tailLines")), content_type="text/plain"
            )
        text = self.pod_logs.read(namespace, name, container)
        if text is None:
            state = next(
                (
                    s.get("state") or {}
                    for s in (pod.get("status") or {}).get("containerStatuses") or []
                    if s.get("name") == container
                ),
                {},
            )
            reason = (state.get("waiting") or {}).get("reason", "ContainerCreating")
            # A container waiting to restart shows the log of its last instance, as kubelet serves it.
            text = self.pod_logs.read(namespace, name, container, previous=True)
            if text is None and (not state or "waiting" in state):
                raise ApiError(400, f'container "{container}" in pod "{name}" is waiting to start: {reason}')
            text = text or ""
        text = _tail(text, request.query.get("tailLines"))
        if not _bool(request.query.get("follow")):
            return web.Response(text=text, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(text.encode())
        sent = len(self.pod_logs.read(namespace, name, container) or "")
        while self.store.try_get(pod_rt, name, namespace) is not None:
            await self.pod_logs.wait(namespace, name, 1.0)
            current = self.pod_logs.read(namespace, name, container) or ""
            if len(current) > sent:
                await response.write(current[sent:].encode())
                sent = len(current)
        return response

    # ---- proxy -----------------------------------------------------------------------------------------
    def _proxy_target(self, rt: ResourceType, namespace: str, name_port: str) -> tuple[str, int]:
        parts = name_port.split(":")
        if len(parts) == 3:
            parts = parts[1:]
        name, port_ref = parts[0], parts[1] if len(parts) > 1 else ""
        pods_rt = self.store.storage_type("", "pods")
        assert pods_rt is not None
        if rt.plural == "pods":
            pods = [self.store.get_raw(pods_rt, name, namespace)]
        elif rt.plural == "services":
            svc = self.store.get_raw(rt, name, namespace)
            ports = (svc.get("spec") or {}).get("ports") or []
            if port_ref and not any(
                str(p.get("port")) == port_ref or p.get("name") == port_ref for p in ports
            ):
                raise ApiError(
                    503, f'no endpoints available for service "{name_port}"', reason="ServiceUnavailable"
                )
            selector = (svc.get("spec") or {}).get("selector") or {}
            pods = [
                p
                for p in self.store.list_page(pods_rt, namespace).items
                if selector
                and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
            ]
            chosen = next(
                (
                    p
                    for p in ports
                    if not port_ref or str(p.get("port")) == port_ref or p.get("name") == port_ref
                ),
                None,
            )
            target_port = (chosen or {}).get("targetPort", (chosen or {}).get("port"))
            if isinstance(target_port, int):
                pods = [p for p in pods if _listens(p, target_port)]
        else:
            raise ApiError(405, "the server does not allow this method on the requested resource")
        for pod in pods:
            ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (pod.get("status") or {}).get("conditions") or []
            )
            port = (pod["metadata"].get("annotations") or {}).get(HTTP_PORT_ANNOTATION)
            if port and (ready or rt.plural == "pods") and not pod["metadata"].get("deletionTimestamp"):
                return name, int(port)
        raise ApiError(503, f'no endpoints available for service "{name}"', reason="ServiceUnavailable")

    async def proxy(
        self, request: web.Request, rt: ResourceType, namespace: str, name_port: str, rest: str
    ) -> web.StreamResponse:
        _, port = self._proxy_target(rt, namespace, name_port)
        if self._client is None:
            self._client = aiohttp.ClientSession(
                auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None, sock_connect=5)
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        url = f"http://127.0.0.1:{port}/{rest}"
        try:
            async with self._client.request(
                request.method,
                url,
                params=request.query,
                headers=headers,
                data=await request.read() if request.can_read_body else None,
                allow_redirects=False,
            ) as upstream:
                response = web.StreamResponse(
                    status=upstream.status,
                    headers={k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP},
                )
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except aiohttp.ClientError as exc:
            raise ApiError(
                503, f"error trying to reach service: {exc}", reason="ServiceUnavailable"
            ) from None

    async def _on_shutdown(self, _: web.Application) -> None:
        for watch in list(self.watches):
            watch.close()
        if self._client is not None:
            await self._client.close()


def _tail(text: str, lines: str | None) -> str:
    if lines is None:
        return text
    count = int(lines)
    return "".join(text.splitlines(keepends=True)[-count:]) if count > 0 else ""


def _bool(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")
