"""A simulated Service Bus namespace's management API, as `ServiceBusAdministrationClient` and KEDA's
azure-servicebus scaler read it: `GET https://<namespace>/<queue>?api-version=<any>` with a bearer token
from the simulated Entra ID (scope `https://servicebus.azure.net//.default`) → the ATOM entry with the
queue's `CountDetails` (azure-wire.md D3). Generic on purpose: any identity with a role that may read the
entity (Azure Service Bus Data Owner, Owner, Contributor, Reader on the namespace or the queue) reads any
queue of the namespace; others get Service Bus's 401 `Manage,EntityRead claims required for this operation.`
A queue that does not exist is HTTP 200 with an empty feed, as the service answers.

Queue state (`messages`) is shared: whatever puts messages on a queue makes the counts move.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from xml.sax.saxutils import escape

import jwt
from aiohttp import web

from ._entra import SimEntra
from ._tenant import MANAGE_READ_ROLES, Tenant

RESOURCE = "https://servicebus.azure.net"
_ATOM = "application/atom+xml;type=entry"


class _Queued(bytes):
    """An encoded message on a queue, with when its time to live ends (cluster epoch seconds, or None)."""

    expires_at: float | None = None


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class SimServiceBus:
    def __init__(
        self, name: str, tenant: Callable[[], Tenant], entra: SimEntra, now: Callable[[], float]
    ) -> None:
        self.name = name
        self.tenant = tenant
        self.entra = entra
        self.now = now
        self.lock = threading.Lock()
        self.messages: dict[str, list[bytes]] = {}
        """Queue → its active messages (encoded AMQP messages)."""
        self.created = now()
        self.app = web.Application()
        self.app.add_routes([web.get("/{queue}", self._queue)])

    @property
    def host(self) -> str:
        return f"{self.name}.servicebus.windows.net"

    def enqueue(self, queue: str, encoded: list[bytes]) -> None:
        """Put messages on the queue; each one's time to live (AMQP header `ttl`) runs from now, cluster time."""
        from proton import Message

        now = self.now()
        with self.lock:
            items = self.messages.setdefault(queue, [])
            for raw in encoded:
                item = _Queued(raw)
                try:
                    message = Message()
                    message.decode(raw)
                    item.expires_at = now + float(message.ttl) if message.ttl else None
                except Exception:  # not an AMQP message we can read: it never expires
                    item.expires_at = None
                items.append(item)

    def purge_expired(self, queue: str) -> None:
        """Drop what outlived its time to live (Service Bus removes it, or dead-letters it when asked to)."""
        now = self.now()
        with self.lock:
            items = self.messages.get(queue)
            if items:
                items[:] = [m for m in items if getattr(m, "expires_at", None) is None or m.expires_at > now]  # type: ignore[attr-defined]

    def active_count(self, queue: str) -> tuple[int, int]:
        self.purge_expired(queue)
        with self.lock:
            items = list(self.messages.get(queue, []))
        return len(items), sum(len(m) for m in items)

    def _error(self, queue: str, detail: str) -> web.Response:
        tracking = f"{uuid.uuid4()}_G{uuid.uuid4().int % 100}"
        text = (
            f"<Error><Code>401</Code><Detail>{escape(detail)} TrackingId:{tracking}, SystemTracker:"
            f"{self.host}:{escape(queue)}, Timestamp:{_stamp(self.now())}</Detail></Error>"
        )
        return web.Response(status=401, text=text, content_type="application/xml")

    async def _queue(self, request: web.Request) -> web.Response:
        queue = request.match_info["queue"]
        tenant = self.tenant()
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if not token:
            return self._error(queue, "MissingToken: The authorization header was not found.")
        try:
            claims = self.entra.verify_access_token(token, RESOURCE)
        except jwt.PyJWTError:
            return self._error(queue, "claim is empty or token is invalid.")
        identity = next((i for i in tenant.identities if i.principal_id == claims.get("oid")), None)
        if identity is None or not identity.has_role(
            MANAGE_READ_ROLES, self.name, f"{self.name}/{queue}", tenant.resource_group
        ):
            return self._error(queue, "Manage,EntityRead claims required for this operation.")
        namespace = tenant.namespace(self.name)
        base = f"https://{request.host}/{escape(queue)}?api-version={escape(request.query.get('api-version', ''))}"
        updated = _stamp(self.now())
        if namespace is None or queue not in namespace.queues:
            feed = (
                '<feed xmlns="http://www.w3.org/2005/Atom"><title type="text">Publicly Listed Services</title>'
                f'<subtitle type="text">This is the list of publicly-listed services currently available.'
                f"</subtitle><id>uuid:{uuid.uuid4()};id=1</id><updated>{updated}</updated>"
                "<generator>Service Bus 1.1</generator></feed>"
            )
            return web.Response(text=feed, content_type="application/atom+xml;type=feed", charset="utf-8")
        count, size = self.active_count(queue)
        created = _stamp(self.created)
        entry = f"""<entry xmlns="http://www.w3.org/2005/Atom"><id>{base}</id><title type="text">{escape(queue)}</title><published>{created}</published><updated>{updated}</updated><author><name>{escape(self.name)}</name></author><link rel="self" href="{base}"/><content type="application/xml"><QueueDescription xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><LockDuration>PT1M</LockDuration><MaxSizeInMegabytes>1024</MaxSizeInMegabytes><RequiresDuplicateDetection>false</RequiresDuplicateDetection><RequiresSession>false</RequiresSession><DefaultMessageTimeToLive>P14D</DefaultMessageTimeToLive><DeadLetteringOnMessageExpiration>false</DeadLetteringOnMessageExpiration><DuplicateDetectionHistoryTimeWindow>PT10M</DuplicateDetectionHistoryTimeWindow><MaxDeliveryCount>10</MaxDeliveryCount><EnableBatchedOperations>true</EnableBatchedOperations><SizeInBytes>{size}</SizeInBytes><MessageCount>{count}</MessageCount><IsAnonymousAccessible>false</IsAnonymousAccessible><AuthorizationRules/><Status>Active</Status><CreatedAt>{created}</CreatedAt><UpdatedAt>{created}</UpdatedAt><AccessedAt>{updated}</AccessedAt><SupportOrdering>true</SupportOrdering><CountDetails xmlns:d2p1="http://schemas.microsoft.com/netservices/2011/06/servicebus"><d2p1:ActiveMessageCount>{count}</d2p1:ActiveMessageCount><d2p1:DeadLetterMessageCount>0</d2p1:DeadLetterMessageCount><d2p1:ScheduledMessageCount>0</d2p1:ScheduledMessageCount><d2p1:TransferMessageCount>0</d2p1:TransferMessageCount><d2p1:TransferDeadLetterMessageCount>0</d2p1:TransferDeadLetterMessageCount></CountDetails><AutoDeleteOnIdle>P10675199DT2H48M5.4775807S</AutoDeleteOnIdle><EnablePartitioning>false</EnablePartitioning><EntityAvailabilityStatus>Available</EntityAvailabilityStatus><EnableExpress>false</EnableExpress></QueueDescription></content></entry>"""
        return web.Response(text=entry, content_type=_ATOM, charset="utf-8")
