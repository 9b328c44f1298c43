"""A proxy in front of a Stripe API (localstripe) that sees each request before forwarding it: a subclass's
`before` may delay it, hold it, or answer it itself. The bench's slower Stripe and the tests' held or
refused intent creates are made of it."""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fusion.local.ports import any_free_port

Answer = tuple[int, bytes, str]  # status, body, content type


class StripeProxy:
    """Forwards every request to `upstream` unchanged, once `before` let it through."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self._server = ThreadingHTTPServer(("127.0.0.1", any_free_port()), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, name="stripe-proxy", daemon=True).start()

    def before(self, method: str, path: str) -> Answer | None:
        """Called for each request before it is forwarded; an answer given here is sent instead."""
        return None

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        upstream = http.client.HTTPConnection(self.upstream.hostname or "127.0.0.1", self.upstream.port, timeout=30)
        try:
            upstream.request(method, path, body=body, headers=headers)
            response = upstream.getresponse()
            return response.status, response.read(), response.getheader("Content-Type", "application/json")
        finally:
            upstream.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                answer = proxy.before(self.command, self.path)
                if answer is None:
                    headers = {name: value for name, value in self.headers.items() if name.lower() != "host"}
                    answer = proxy._forward(self.command, self.path, headers, body)
                status, content, content_type = answer
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_DELETE = _relay

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler
