"""A real HTTP endpoint in the style of Twilio's Messages API, for tests.

Each accepted ``POST /2010-04-01/Accounts/{sid}/Messages.json`` is stored as a
JSON file. ``--fail-first N`` answers 503 to the first N requests (a provider
outage that then recovers). Run as a subprocess.
"""
from __future__ import annotations

import argparse
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs


def make_handler(out: Path, fail_first: int):
    lock = threading.Lock()
    state = {"seen": 0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            with lock:
                state["seen"] += 1
                failing = state["seen"] <= fail_first
            if failing:
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"message": "Service unavailable"}')
                return
            sid = "SM" + uuid.uuid4().hex
            record = {
                "path": self.path,
                "authorization": self.headers.get("Authorization"),
                "idempotency_key": self.headers.get("Idempotency-Key"),
                "form": {k: v[0] for k, v in parse_qs(body).items()},
                "sid": sid,
            }
            name = f"{time.time():.6f}-{sid}.json"
            tmp = out / (name + ".tmp")
            tmp.write_text(json.dumps(record))
            os.replace(tmp, out / name)
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"sid": sid, "status": "queued"}).encode())

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.out, args.fail_first))
    (args.out / "READY").write_text("ok")
    server.serve_forever()


if __name__ == "__main__":
    main()
