"""A webhook receiver that trusts only the `standardwebhooks` package from
PyPI (nobody here wrote it): daemon/tests/webhook_standard.rs points the
daemon's webhook provider at it.

    receiver.py PORT_FILE LOG_FILE SECRET...

Listens on 127.0.0.1 (port written to PORT_FILE), and for every POST writes
one JSON line to LOG_FILE: which of the SECRETs verify the delivery now,
what the verifier says of the same delivery replayed 6 minutes later (its
tolerance is 5), and of it replayed then with the timestamp header moved on
by as much.
Answers 204 when some secret verifies it, 401 otherwise.
"""
import json
import os
import sys
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import standardwebhooks.webhooks as sw

PORT_FILE, LOG_FILE, SECRETS = sys.argv[1], sys.argv[2], sys.argv[3:]
REAL_DATETIME = sw.datetime


class Later(REAL_DATETIME):
    """The verifier's clock, 6 minutes on: a captured delivery replayed."""

    @classmethod
    def now(cls, tz=None):
        return REAL_DATETIME.now(tz) + timedelta(minutes=6)


def verdict(secret, body, headers):
    try:
        sw.Webhook(secret).verify(body, headers)
        return "ok"
    except sw.WebhookVerificationError as e:
        return "refused: " + str(e)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k: v for k, v in self.headers.items()}
        now = [verdict(s, body, headers) for s in SECRETS]
        # The replayer may also move the timestamp to its own "now".
        retimed = dict(headers)
        for k in list(retimed):
            if k.lower() == "webhook-timestamp":
                retimed[k] = str(int(retimed[k]) + 360)
        sw.datetime = Later
        try:
            later = [verdict(s, body, headers) for s in SECRETS]
            moved = [verdict(s, body, retimed) for s in SECRETS]
        finally:
            sw.datetime = REAL_DATETIME
        with open(LOG_FILE, "a") as f:
            f.write(json.dumps({
                "now": now, "replayed_later": later, "retimed": moved,
                "signature": headers.get("webhook-signature", ""),
            }) + "\n")
        self.send_response(204 if "ok" in now else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
