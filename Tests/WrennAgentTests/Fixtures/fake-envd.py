#!/usr/bin/python3
# Test stand-in for wrenn-envd (until the real one lands): a tiny HTTP server with the endpoints the runtime
# tests need. Runs as the guest's envd (started by /usr/local/lib/wrenn/start-envd.sh).
import json, os, subprocess, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("WRENN_ENVD_PORT", "49983"))

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
        b = self.body()
        if self.path == "/exec":
            p = subprocess.run(["/bin/sh", "-c", b["cmd"]], capture_output=True, timeout=60)
            return self.reply(200, {"stdout": p.stdout.decode(errors="replace"), "stderr": p.stderr.decode(errors="replace"), "exit_code": p.returncode})
        if self.path == "/background":
            subprocess.Popen(["/bin/sh", "-c", b["cmd"]], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            return self.reply(204)
        if self.path == "/snapshot/prepare":
            os.sync()
            return self.reply(204)
        if self.path == "/snapshot/restored":
            if b.get("hostname"):
                subprocess.run(["hostname", b["hostname"]])
            if b.get("unix_time"):
                subprocess.run(["date", "-s", "@%d" % int(b["unix_time"])], capture_output=True)
            if b.get("entropy"):
                with open("/dev/urandom", "w") as f:
                    f.write(b["entropy"])
            return self.reply(204)
        self.reply(404, {"error": "not found"})

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
