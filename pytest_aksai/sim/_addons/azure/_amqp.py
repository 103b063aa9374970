"""A simulated Service Bus namespace's AMQP 1.0 endpoint (AMQPS, SASL ANONYMOUS), enough for the unchanged
`azure-servicebus` SDK to send to and receive from a queue (azure-wire.md D2, D5): claims-based security
(`$cbs` put-token, answered on the same connection with `status-code` / `status-description` and the request's
message id as correlation id), queue addressing `amqps://<host>/<queue>`, the SDK's batch messages (format
0x80013700: a properties section and one data section per encoded message) unpacked so every message counts,
16-byte delivery tags, receive-and-delete and peek-lock (complete, abandon, dead-letter; a lost link returns
its locked messages). Entity links need a put-token for that entity whose identity
holds the claim: otherwise the link is refused with `amqp:unauthorized-access` and Service Bus's text.

Runs qpid-proton's reactor in a thread of its own; the queues are the management API's (`SimServiceBus`).
"""

from __future__ import annotations

import logging
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt

from ._entra import SimEntra
from ._servicebus import RESOURCE, SimServiceBus
from ._tenant import LISTEN_ROLES, SEND_ROLES, Tenant

log = logging.getLogger("pytest_aksai.sim.azure.amqp")
CBS = "$cbs"


def _sections(raw: bytes) -> list[tuple[int, bytes]]:
    """The message's sections as (descriptor code, encoded value) pairs, for the section kinds a batch holds
    (compound values and binary); raises ValueError on anything else."""
    out, i = [], 0
    while i < len(raw):
        if raw[i : i + 2] != b"\x00\x53":
            raise ValueError("not a section")
        code, ctor, i = raw[i + 2], raw[i + 3], i + 4
        if ctor in (0xA0, 0xC0, 0xC1):  # vbin8, list8, map8: one size byte
            size, i = raw[i], i + 1
        elif ctor in (0xB0, 0xD0, 0xD1):  # vbin32, list32, map32
            size, i = int.from_bytes(raw[i : i + 4], "big"), i + 4
        elif ctor == 0x45:  # list0
            size = 0
        else:
            raise ValueError(f"constructor {ctor:#x}")
        out.append((code, raw[i : i + size] if ctor in (0xA0, 0xB0) else b""))
        i += size
    return out


def unpack(raw: bytes) -> list[bytes]:
    """One encoded message, or each message of an Azure batch message."""
    raw = bytes(raw)
    try:
        sections = _sections(raw)
    except (ValueError, IndexError):
        return [raw]
    parts = [value for code, value in sections if code == 0x75]
    if parts and all(p[:2] == b"\x00\x53" for p in parts):
        return parts
    return [raw]


class AmqpBroker:
    def __init__(
        self,
        port: int,
        bus: SimServiceBus,
        tenant: Callable[[], Tenant],
        entra: SimEntra,
        cert_pem: bytes,
        key_pem: bytes,
    ) -> None:
        self.port = port
        self.bus = bus
        self.tenant = tenant
        self.entra = entra
        self._dir = tempfile.TemporaryDirectory(prefix="aksai-sim-amqp-")
        self._cert, self._key = Path(self._dir.name) / "tls.crt", Path(self._dir.name) / "tls.key"
        self._cert.write_bytes(cert_pem)
        self._key.write_bytes(key_pem)
        self._thread: threading.Thread | None = None
        self._container: Any = None
        self._ready = threading.Event()

    def start(self) -> None:
        from proton import SSLDomain
        from proton.handlers import MessagingHandler
        from proton.reactor import Container

        broker = self

        class Handler(MessagingHandler):
            def __init__(self) -> None:
                super().__init__(auto_accept=False, auto_settle=True)
                self.cbs_senders: dict[Any, Any] = {}
                self.claims: dict[Any, dict[str, dict[str, Any]]] = {}
                self.consumers: list[Any] = []
                self.producers: set[Any] = set()
                """Entity links the client may send on (authorised at attach)."""
                self.locked: dict[Any, tuple[str, bytes]] = {}
                """Peek-locked deliveries not yet settled by their consumer → (queue, encoded message)."""

            def on_start(self, event: Any) -> None:
                domain = SSLDomain(SSLDomain.MODE_SERVER)
                domain.set_credentials(str(broker._cert), str(broker._key), None)
                domain.set_peer_authentication(SSLDomain.ANONYMOUS_PEER)
                event.container.listen(f"amqps://127.0.0.1:{broker.port}", ssl_domain=domain)
                broker._ready.set()

            def _queue(self, address: str) -> tuple[SimServiceBus | None, str]:
                path = address.split("://", 1)[-1].split("/", 1)[-1] if "://" in address else address
                return broker.bus, path.strip("/").split("/")[0]

            def on_link_remote_open(self, event: Any) -> None:
                link = event.link
                address = (link.remote_source.address if link.is_sender else link.remote_target.address) or ""
                if address == CBS:
                    if link.is_sender:
                        link.source.address = address
                    else:
                        link.target.address = address
                    if link.is_sender:
                        self.cbs_senders[event.connection] = link
                    link.open()
                    if not link.is_sender:
                        link.flow(100)
                    return
                bus, queue = self._queue(address)
                namespace = broker.tenant().namespace(bus.name) if bus else None
                if bus is None or namespace is None or queue not in namespace.queues:
                    self._refuse(
                        link,
                        "amqp:not-found",
                        f"The messaging entity '{bus.host if bus else '?'}:queue:{queue}' could not be found.",
                    )
                    return
                claim, roles = ("Listen", LISTEN_ROLES) if link.is_sender else ("Send", SEND_ROLES)
                oid = (self.claims.get(event.connection) or {}).get(queue, {}).get("oid")
                identity = next((i for i in broker.tenant().identities if i.principal_id == oid), None)
                if identity is None or not identity.has_role(roles, bus.name, f"{bus.name}/{queue}"):
                    refusal = (
                        f"Unauthorized access. '{claim}' claim(s) are required to perform this operation. "
                        f"Resource: 'sb://{bus.host}/{queue}'. TrackingId:{uuid.uuid4()}"
                    )
                    self._refuse(link, "amqp:unauthorized-access", refusal)
                    return
                if link.is_sender:
                    link.source.address = address
                else:
                    link.target.address = address
                    self.producers.add(link)
                link.open()
                if link.is_sender:
                    link.queue_name = queue
                    self.consumers.append(link)
                else:
                    link.flow(100)

            def _refuse(self, link: Any, condition: str, description: str) -> None:
                """Refuse the link as AMQP 1.0 (2.6.3) and Service Bus do: an attach without the terminus
                the client asked for (a null target for its sender, a null source for its receiver), then a
                detach carrying the error. The null terminus stops the SDK before it sends a transfer on the
                link, so it meets the detach's condition, not a settled-as-undelivered message."""
                from proton import Condition, Terminus

                (link.target if link.is_receiver else link.source).type = Terminus.UNSPECIFIED
                link.open()
                link.condition = Condition(condition, description)
                link.close()

            def on_link_remote_close(self, event: Any) -> None:
                if event.link in self.consumers:
                    self.consumers.remove(event.link)
                self.producers.discard(event.link)
                self._lock_lost(lambda d: d.link is event.link)

            def on_connection_remote_close(self, event: Any) -> None:
                self.cbs_senders.pop(event.connection, None)
                self.claims.pop(event.connection, None)
                self._lock_lost(lambda d: d.link.connection is event.connection)
                self.consumers = [c for c in self.consumers if c.connection is not event.connection]
                self.producers = {p for p in self.producers if p.connection is not event.connection}

            def on_delivery(self, event: Any) -> None:
                delivery, link = event.delivery, event.link
                if not link.is_receiver:
                    self._settled_by_consumer(delivery)
                    return
                if not delivery.readable or delivery.partial:
                    return
                raw = link.recv(delivery.pending)
                link.advance()
                if link.target.address == CBS:
                    from proton import Message

                    request = Message()
                    request.decode(raw)
                    self._put_token(event, request)
                elif link in self.producers:
                    bus, queue = self._queue(link.target.address or "")
                    if bus is not None:
                        bus.enqueue(queue, unpack(raw))
                delivery.update(delivery.ACCEPTED)
                delivery.settle()
                if link.credit < 10:
                    link.flow(100)
                self._dispatch()

            def _put_token(self, event: Any, request: Any) -> None:
                from proton import Message

                props = request.properties or {}
                audience = str(props.get("name", ""))
                status, text = 200, "OK"
                try:
                    claims = broker.entra.verify_access_token(str(request.body), RESOURCE)
                except jwt.PyJWTError as exc:
                    status, text = 401, f"InvalidSignature: The token has an invalid signature. ({exc})"
                else:
                    queue = audience.rstrip("/").rsplit("/", 1)[-1]
                    self.claims.setdefault(event.connection, {})[queue] = claims
                reply = Message(
                    correlation_id=request.id,
                    properties={"status-code": status, "status-description": text},
                )
                sender = self.cbs_senders.get(event.connection)
                if sender is not None:
                    sender.send(reply)

            def on_sendable(self, event: Any) -> None:
                self._dispatch()

            def _dispatch(self) -> None:
                for link in list(self.consumers):
                    bus = broker.bus
                    bus.purge_expired(link.queue_name)
                    while link.credit > 0:
                        with bus.lock:
                            items = bus.messages.get(link.queue_name) or []
                            if not items:
                                break
                            encoded = items.pop(0)
                        delivery = link.delivery(uuid.uuid4().bytes)
                        link.send(encoded)
                        if link.remote_snd_settle_mode == link.SND_SETTLED:
                            delivery.settle()  # receive-and-delete
                        else:
                            self.locked[delivery] = (link.queue_name, encoded)
                        link.advance()

            # ---- peek-lock: a delivery stays locked until the consumer settles it -------------------------
            def _settled_by_consumer(self, delivery: Any) -> None:
                """complete → gone; abandon (released/modified) → back at the head; dead-letter (rejected) →
                gone from the active count. The outcome is echoed settled, which the SDK waits for."""
                locked = self.locked.pop(delivery, None)
                if locked is None or not delivery.updated:
                    return
                state = delivery.remote_state
                if state in (delivery.RELEASED, delivery.MODIFIED):
                    with broker.bus.lock:
                        broker.bus.messages.setdefault(locked[0], []).insert(0, locked[1])
                delivery.update(state)
                delivery.settle()
                self._dispatch()

            def _lock_lost(self, which: Callable[[Any], bool]) -> None:
                for delivery in [d for d in self.locked if which(d)]:
                    queue, encoded = self.locked.pop(delivery)
                    with broker.bus.lock:
                        broker.bus.messages.setdefault(queue, []).insert(0, encoded)

        self._container = Container(Handler())
        self._container.container_id = "aksai-sim-servicebus"
        self._container.sasl_enabled = True
        self._container.allowed_mechs = "ANONYMOUS"
        self._thread = threading.Thread(target=self._run, name="aksai-sim-amqp", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        try:
            self._container.run()
        except Exception:
            log.exception("the simulated Service Bus AMQP endpoint stopped")

    def stop(self) -> None:
        if self._container is not None:
            self._container.stop()
        self._dir.cleanup()
