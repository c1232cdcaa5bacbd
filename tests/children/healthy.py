"""A real HTTP server (stdlib) for probe tests: `healthy.py PORT FLAG [DELAY]`.

GET /healthz answers 200 "ok" while the file FLAG does not exist, 500 "sick" once it
does (a test flips it). It listens after DELAY seconds (default 0) and prints
"listening on PORT" then.
"""

import http.server
import os
import sys
import time

port, flag = int(sys.argv[1]), sys.argv[2]
time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 0)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        sick = os.path.exists(flag)
        body = b"sick" if sick else b"ok"
        self.send_response(500 if sick else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
print(f"listening on {port}", flush=True)
server.serve_forever()
