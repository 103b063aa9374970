"""Demand for a Service Bus queue trigger: messages sent with the unchanged `azure-servicebus` SDK, each tagged with
the run (application property `aksai-run`) and a bounded time to live, and drained again by the same identity:
peek-lock receive, complete what this run sent, abandon everything else (other producers' messages go back on the
queue untouched, as far as the service is concerned)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pytest_aksai.azure._target import AzureTarget

RUN_PROPERTY = "aksai-run"


@dataclass
class QueueDemand:
    """Messages on `namespace/queue` sent as `credential`'s identity; `sent - drained` is what is still out."""

    target: AzureTarget
    namespace: str
    queue: str
    credential: Any
    run_id: str
    time_to_live: timedelta = timedelta(minutes=30)
    """Bounded even when the drain never runs (the process is killed): the service drops them then."""
    sent: int = 0
    drained: int = 0
    drained_at: float | None = None
    """`time.monotonic()` when the last of this run's messages was completed (the demand's end)."""
    _client: Any = field(default=None, repr=False)
    _sender: Any = field(default=None, repr=False)

    @property
    def fqdn(self) -> str:
        return self.namespace if "." in self.namespace else f"{self.namespace}.servicebus.windows.net"

    def _bus(self) -> Any:
        if self._client is None:
            self._client = self.target.service_bus_client(self.fqdn, self.credential, retry_total=1)
        return self._client

    def open(self) -> None:
        """Connect and attach the sender (claims-based security included) before anything is timed."""
        if self._sender is None:
            sender = self._bus().get_queue_sender(self.queue)
            sender.__enter__()
            self._sender = sender

    def send(self, count: int) -> None:
        """Send `count` messages in one batch; raises the SDK's ServiceBusError when the service refuses."""
        from azure.servicebus import ServiceBusMessage

        self.open()
        self._sender.send_messages(
            [
                ServiceBusMessage(
                    f"pytest-aksai KEDA demand {self.sent + i + 1}",
                    application_properties={RUN_PROPERTY: self.run_id},
                    time_to_live=self.time_to_live,
                )
                for i in range(count)
            ]
        )
        self.sent += count

    def drain(self, wall_seconds: float = 20.0) -> int:
        """Remove what this run sent and is still queued (workers may have consumed some); returns how many are
        still out when the deadline passes (0 = all gone)."""
        from azure.servicebus import ServiceBusReceiveMode

        if self.drained >= self.sent:
            return 0
        deadline = time.monotonic() + wall_seconds
        with self._bus().get_queue_receiver(
            self.queue, receive_mode=ServiceBusReceiveMode.PEEK_LOCK, max_wait_time=1
        ) as receiver:
            while self.drained < self.sent and time.monotonic() < deadline:
                batch = receiver.receive_messages(max_message_count=50, max_wait_time=1)
                if not batch:
                    break
                ours = 0
                for message in batch:
                    props = message.application_properties or {}
                    mine = props.get(RUN_PROPERTY.encode()) or props.get(RUN_PROPERTY)
                    if mine in (self.run_id, self.run_id.encode()):
                        receiver.complete_message(message)
                        self.drained_at = time.monotonic()
                        ours += 1
                    else:
                        receiver.abandon_message(message)
                self.drained += ours
                if not ours:
                    break  # only others' messages are left at the head: workers consumed the rest of ours
        return max(0, self.sent - self.drained)

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        if self._client is not None:
            self._client.close()
            self._client = None
