"""A stand-in upstream for the nginx sidecar's body tests: POST /upload reads the body as it
arrives and answers how many bytes came; GET /download?bytes=N streams N bytes. On the port given
as its argument (the web image's, where nginx expects gunicorn)."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

CHUNK = 1 << 20


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as gunicorn's threaded worker

    def do_POST(self):
        left = int(self.headers["Content-Length"])
        received = 0
        while left:
            data = self.rfile.read(min(CHUNK, left))
            if not data:
                break
            received += len(data)
            left -= len(data)
        self.answer(json.dumps({"received": received}).encode())

    def do_GET(self):
        size = int(parse_qs(urlparse(self.path).query).get("bytes", ["0"])[0])
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        block = bytes(CHUNK)
        while size:
            self.wfile.write(block[: min(CHUNK, size)])
            size -= min(CHUNK, size)

    def answer(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = ThreadingHTTPServer(("", int(sys.argv[1])), Handler)
print(f"bodies upstream listening on {sys.argv[1]}", flush=True)  # the tests wait for this line
server.serve_forever()
