#!/usr/bin/env python3
"""A leaking server without scopes for the health and recycling tests: a
stdlib ThreadingHTTPServer on 127.0.0.1:PORT that keeps MIB MiB (default 2,
zero-filled, so resident) of every call and answers how many calls it holds.

    leaky_http.py PORT [MIB]
"""
import http.server
import sys

LEAK = []
MIB = int(sys.argv[2]) if len(sys.argv) > 2 else 2


class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        LEAK.append(bytearray(MIB << 20))
        body = b"%d\n" % len(LEAK)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
