"""Connections that cannot lock the owner out: uvicorn's h11 protocol with a deadline for each
request's head and a table of connections in which the idle ones give way.

Left to itself uvicorn keeps a connection that never sends a request (or sends half of its head
and stops) for ever, and counts it against `limit_concurrency`, so a hundred silent sockets from
anyone who can reach the port answer every later request with 503. Here:

- a connection has `head_seconds` to deliver each request's head, from its opening or from the
  end of the previous response; one that has not is closed (a request in progress, a stream
  included, is never cut);
- at most `max_connections` are open; a new one beyond that closes the connection that has been
  waiting longest for a head, so an idle socket gives way to a working client (no cap per client
  address: behind a reverse proxy every client comes from 127.0.0.1, the owner too);
- what is limited otherwise is requests in progress (`pipeline.serve.guard.Guard`), not sockets.
"""

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_SECONDS = 10.0  # a request's head, from the connection's opening or the previous response's end
MAX_CONNECTIONS = 400  # open sockets, idle ones included (a service's file descriptors are often limited to 1,024)


def guarded_protocol(head_seconds: float = HEAD_SECONDS, max_connections: int = MAX_CONNECTIONS) -> type[H11Protocol]:
    """uvicorn's `http` protocol class with these limits (uvicorn builds it with its own arguments)."""

    class GuardedH11(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.head_timer: asyncio.TimerHandle | None = None
            self.waiting_since = self.loop.time()
            self._await_head()
            if len(self.connections) > max_connections:
                idle = [c for c in self.connections if isinstance(c, GuardedH11) and c.head_timer is not None]
                oldest = min(idle, key=lambda c: c.waiting_since)  # this one is idle too, so there is one
                oldest.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self._head_arrived()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.answering:
                self._head_arrived()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and not self.answering:
                self._await_head()  # a kept-alive connection waits for its next request's head

        @property
        def answering(self) -> bool:
            """A request's head has come and its response is not complete yet."""
            return self.cycle is not None and not self.cycle.response_complete

        def _await_head(self) -> None:
            self._head_arrived()
            self.waiting_since = self.loop.time()
            self.head_timer = self.loop.call_later(head_seconds, self._head_overdue)

        def _head_arrived(self) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None

        def _head_overdue(self) -> None:
            self.head_timer = None
            if not self.answering and not self.transport.is_closing():
                self.transport.close()

    return GuardedH11
