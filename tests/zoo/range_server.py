"""A local HTTP file server for download tests: Range support, 404s, dropped connections.

Bound to 127.0.0.1 on a free port, served from a daemon thread, with a socket timeout so
that no request can hang a test; :meth:`RangeServer.close` stops it.
"""
from __future__ import annotations

import http.server
import threading
from dataclasses import dataclass, field


@dataclass
class ServerConfig:
    """What the server serves and how it misbehaves."""

    files: dict[str, bytes] = field(default_factory=dict)
    ignore_range: bool = False
    drop_after: dict[str, int] = field(default_factory=dict)  # path -> bytes, first request only
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)


def _handler(config: ServerConfig) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = 10

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
            return

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            range_header = self.headers.get("Range")
            config.requests.append((self.path, range_header))
            data = config.files.get(self.path)
            if data is None:
                self.send_error(404, "Not Found")
                return
            start = 0
            if range_header and not config.ignore_range:
                start = int(range_header.split("=", 1)[1].split("-", 1)[0])
                if start >= len(data):
                    self.send_error(416, "Range Not Satisfiable")
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            drop = config.drop_after.pop(self.path, None)
            if drop is not None:
                self.wfile.write(body[:drop])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


class RangeServer:
    """Serve ``config`` on ``http://127.0.0.1:<port>``."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(config))
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs=dict(poll_interval=0.05),
                                       daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
