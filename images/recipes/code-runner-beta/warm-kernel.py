"""code-runner-beta's healthcheck: passes once a "wrenn" kernel runs in the Jupyter Server on :8888 and has executed
code, so the template's snapshot carries a warm kernel. The SDK's code runner reuses a running kernel of its
kernelspec, so a capsule's first run_code neither starts Python nor imports the data stack (slow on an emulated CPU).

It starts the kernel through the server's REST API, then talks to it with jupyter_client over the connection file the
server wrote, running a silent cell that imports the data stack (modules cached, no names bound, no execution count).
That traffic also moves the server's view of the kernel from "starting" to "idle", which is checked last.
"""

import json
import sys
import time
import urllib.request

from jupyter_client import BlockingKernelClient
from jupyter_core.paths import jupyter_runtime_dir

SERVER = "http://127.0.0.1:8888"
PRELOAD = "import numpy, pandas, matplotlib.pyplot, seaborn, requests\ndel numpy, pandas, matplotlib, seaborn, requests"


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(SERVER + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


kernels = [kernel for kernel in call("GET", "/api/kernels") if kernel["name"] == "wrenn"]
kernel = kernels[0] if kernels else call("POST", "/api/kernels", {"name": "wrenn"})
client = BlockingKernelClient(connection_file=f"{jupyter_runtime_dir()}/kernel-{kernel['id']}.json")
client.load_connection_file()
client.start_channels()
try:
    client.wait_for_ready(timeout=120)
    reply = client.execute_interactive(PRELOAD, silent=True, store_history=False, timeout=300)
    if reply["content"]["status"] != "ok":
        sys.exit(f"preloading failed: {reply['content']}")
finally:
    client.stop_channels()

for _ in range(100):
    if call("GET", f"/api/kernels/{kernel['id']}")["execution_state"] == "idle":
        print(f"kernel {kernel['id']} is warm and idle")
        sys.exit(0)
    time.sleep(0.1)
sys.exit("the server does not see the kernel idle")
