#!/usr/bin/python3
# Test stand-in for wrenn-envd (until the real one lands): a tiny HTTP server with the endpoints the runtime
# tests need. Runs as the guest's envd (started by /usr/local/lib/wrenn/start-envd.sh).
import base64, json, os, subprocess, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("WRENN_ENVD_PORT", "49983"))
TOKEN = [None]
for word in open("/proc/cmdline").read().split():
    if word.startswith("wrenn.envd_token="):
        TOKEN[0] = word.split("=", 1)[1]

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def do_GET(self):
        if self.path == "/health":
            return self.reply(200, {"version": "fake-envd"})
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        if TOKEN[0] is not None and self.headers.get("Authorization") != "Bearer " + TOKEN[0]:
            self.body()
            return self.reply(401, {"error": "unauthorized"})
        b = self.body()
        if self.path == "/exec":
            argv = [b["cmd"]] + (b.get("args") or [])
            if b.get("background"):
                p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
                return self.reply(202, {"cmd": b["cmd"], "pid": p.pid, "tag": b.get("tag") or "proc-fake"})
            started = time.time()
            p = subprocess.run(argv, capture_output=True, timeout=b.get("timeout_sec") or 30)
            return self.reply(200, {"cmd": b["cmd"], "stdout": p.stdout.decode(errors="replace"), "stderr": p.stderr.decode(errors="replace"),
                                    "exit_code": p.returncode, "duration_ms": int((time.time() - started) * 1000), "encoding": "utf8"})
        if self.path == "/snapshot/prepare":
            os.sync()
            return self.reply(204)
        if self.path == "/snapshot/restored":
            if b.get("hostname"):
                subprocess.run(["hostname", b["hostname"]])
            if b.get("timestamp_ms"):
                subprocess.run(["date", "-s", "@%d" % (int(b["timestamp_ms"]) // 1000)], capture_output=True)
            if b.get("entropy"):
                with open("/dev/urandom", "wb") as f:
                    f.write(base64.b64decode(b["entropy"]))
            if b.get("access_token"):
                TOKEN[0] = b["access_token"]
            return self.reply(200, {"capsule_id": b.get("capsule_id"), "clock_set": True, "rng_reseeded": True, "hostname_set": True})
        self.reply(404, {"error": "not found"})

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
