"""The official Python SDK (wrenn 0.2.0) driving a real Wrenn platform: control plane, host agent and capsules.

Run by the Swift suite `WrennSDKTests` with WRENN_BASE_URL / WRENN_API_KEY (WRENN_TEST_TEMPLATE optionally names the template
to boot) pointing at a control plane it started. The tests share one capsule and run in file order.
"""

import asyncio
import os
import time
import uuid

import pytest

from wrenn import AsyncCapsule, Capsule, WrennClient
from wrenn.exceptions import WrennNotFoundError
from wrenn.models import Status

TEMPLATE = os.environ.get("WRENN_TEST_TEMPLATE") or None
RUN = uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def capsule():
    cap = Capsule(template=TEMPLATE, wait=True)
    yield cap
    try:
        cap.destroy()
    except Exception:
        pass


def test_create_with_wait(capsule):
    info = capsule.get_info()
    assert info.status == Status.running
    assert capsule.is_running()
    assert info.id == capsule.capsule_id
    assert any(c.id == capsule.capsule_id for c in Capsule.list())


def test_run_with_envs_and_cwd(capsule):
    result = capsule.commands.run("echo $GREETING; pwd", envs={"GREETING": "hello from sdk"}, cwd="/tmp")
    assert result.exit_code == 0
    assert result.stdout == "hello from sdk\n/tmp\n"
    assert result.stderr == ""


def test_stderr_and_exit_code(capsule):
    result = capsule.commands.run("echo out; echo oops >&2; exit 3")
    assert result.exit_code == 3
    assert result.stdout == "out\n"
    assert result.stderr == "oops\n"


def test_background_process_list_and_kill(capsule):
    handle = capsule.commands.run("sleep 300", background=True, tag=f"sleeper-{RUN}")
    assert handle.pid > 0
    processes = capsule.commands.list()
    mine = [p for p in processes if p.pid == handle.pid]
    assert mine, f"pid {handle.pid} not in {processes}"
    assert mine[0].tag == f"sleeper-{RUN}"
    capsule.commands.kill(handle.pid)
    deadline = time.monotonic() + 10
    while any(p.pid == handle.pid for p in capsule.commands.list()):
        assert time.monotonic() < deadline, "killed process still listed"
        time.sleep(0.2)


def test_exec_stream(capsule):
    events = list(capsule.commands.stream("echo streamed; echo warn >&2; exit 4"))
    types = [e.type for e in events]
    assert types[0] == "start"
    assert "".join(e.data for e in events if e.type == "stdout") == "streamed\n"
    assert "".join(e.data for e in events if e.type == "stderr") == "warn\n"
    assert events[-1].type == "exit" and events[-1].exit_code == 4


def test_connect_to_background_process(capsule):
    handle = capsule.commands.run("sleep 1; echo late output; exit 5", background=True)
    events = list(capsule.commands.connect(handle.pid))
    assert "late output\n" in "".join(e.data for e in events if e.type == "stdout")
    assert events[-1].type == "exit" and events[-1].exit_code == 5


def test_files_write_read_bytes(capsule):
    capsule.files.write("/tmp/sdk/hello.txt", "hello files")
    assert capsule.files.read("/tmp/sdk/hello.txt") == "hello files"
    blob = bytes(range(256)) * 4
    capsule.files.write("/tmp/sdk/blob.bin", blob)
    assert capsule.files.read_bytes("/tmp/sdk/blob.bin") == blob
    with pytest.raises(WrennNotFoundError):
        capsule.files.read(f"/tmp/sdk/missing-{RUN}")


def test_files_list_depth_exists_mkdir_remove(capsule):
    made = capsule.files.make_dir("/tmp/sdk/tree/inner")
    assert made.name == "inner"
    again = capsule.files.make_dir("/tmp/sdk/tree/inner")  # already exists: the SDK returns the existing entry
    assert again.name == "inner"
    capsule.files.write("/tmp/sdk/tree/inner/deep.txt", "deep")
    capsule.files.write("/tmp/sdk/tree/top.txt", "top")
    shallow = {e.name for e in capsule.files.list("/tmp/sdk/tree")}
    assert shallow == {"inner", "top.txt"}
    deep = {e.name for e in capsule.files.list("/tmp/sdk/tree", depth=2)}
    assert {"inner", "top.txt", "deep.txt"} <= deep
    assert capsule.files.exists("/tmp/sdk/tree/top.txt")
    assert not capsule.files.exists(f"/tmp/sdk/tree/nope-{RUN}")
    capsule.files.remove("/tmp/sdk/tree/top.txt")
    assert not capsule.files.exists("/tmp/sdk/tree/top.txt")
    capsule.files.remove("/tmp/sdk/tree")
    assert not capsule.files.exists("/tmp/sdk/tree")


def test_files_stream_up_and_down(capsule):
    chunk = os.urandom(64 * 1024)
    chunks = [chunk] * 48  # 3 MiB, sent chunked
    capsule.files.upload_stream("/tmp/sdk/streamed.bin", iter(chunks))
    received = b"".join(capsule.files.download_stream("/tmp/sdk/streamed.bin"))
    assert len(received) == len(chunk) * 48
    assert received == b"".join(chunks)


def test_pty(capsule):
    output = b""
    with capsule.pty(cmd="/bin/sh", cols=100, rows=30) as term:
        started = next(iter(term))
        assert started.type == "started" and started.pid
        term.resize(120, 40)
        term.write(b"stty size; echo pty-$((6*7))\n")
        deadline = time.monotonic() + 30
        for event in term:
            if event.type == "output":
                output += event.data
            if b"pty-42" in output and b"40 120" in output:
                break
            assert event.type not in ("exit", "error"), f"{event} after {output!r}"
            assert time.monotonic() < deadline, f"no echo, got {output!r}"
    assert b"pty-42" in output


def read_until(term, needle, seconds=30):
    output = b""
    deadline = time.monotonic() + seconds
    for event in term:
        if event.type == "output":
            output += event.data
        if needle in output:
            return output
        assert event.type not in ("exit", "error"), f"{event} after {output!r}"
        assert time.monotonic() < deadline, f"no {needle!r}, got {output!r}"
    raise AssertionError(f"PTY ended before {needle!r}: {output!r}")


def test_pty_reconnect_by_tag(capsule):
    with capsule.pty(cmd="/bin/sh") as term:
        started = next(iter(term))
        assert started.type == "started" and term.tag
        with capsule.pty_connect(term.tag) as again:
            again.write(b"echo reattached-$((2+3))\n")
            assert b"reattached-5" in read_until(again, b"reattached-5")


def test_async_client(capsule):
    async def main():
        cap = await AsyncCapsule.connect(capsule.capsule_id)
        try:
            result = await cap.commands.run("echo async; exit 2", envs={"X": "1"})
            assert (result.stdout, result.exit_code) == ("async\n", 2)
            events = [e async for e in cap.commands.stream("echo via-async-stream")]
            assert "".join(e.data for e in events if e.type == "stdout") == "via-async-stream\n"
            await cap.files.write("/tmp/sdk/async.txt", "async file")
            assert await cap.files.read("/tmp/sdk/async.txt") == "async file"
            output = b""
            async with cap.pty(cmd="/bin/sh") as term:
                await term.write(b"echo async-pty-$((3*3))\n")
                async for event in term:
                    if event.type == "output":
                        output += event.data
                    if b"async-pty-9" in output:
                        break
                    assert event.type not in ("exit", "error"), f"{event} after {output!r}"
            assert b"async-pty-9" in output
        finally:
            await cap._client.aclose()

    asyncio.run(asyncio.wait_for(main(), 120))


def test_pause_resume_and_connect_to_paused(capsule):
    capsule.files.write("/tmp/sdk/survives.txt", "still here")
    paused = capsule.pause(wait=True)
    assert paused.status == Status.paused
    resumed = capsule.resume(wait=True)
    assert resumed.status == Status.running
    assert capsule.files.read("/tmp/sdk/survives.txt") == "still here"

    Capsule.pause(capsule.capsule_id, wait=True)
    connected = Capsule.connect(capsule.capsule_id)  # resumes a paused capsule
    try:
        assert connected.get_info().status == Status.running
        assert connected.commands.run("cat /tmp/sdk/survives.txt").stdout == "still here"
    finally:
        connected._client.close()


def test_snapshot_and_create_from_it(capsule):
    capsule.files.write("/tmp/sdk/from-source.txt", "snapshotted")
    name = f"sdk-snap-{RUN}"
    template = capsule.create_snapshot(name=name, overwrite=True)
    assert template.name == name
    with WrennClient() as client:
        assert any(t.name == name for t in client.snapshots.list(type="snapshot"))
    clone = Capsule(template=name, wait=True)
    try:
        assert clone.files.read("/tmp/sdk/from-source.txt") == "snapshotted"
    finally:
        clone.destroy(wait=True)
    with WrennClient() as client:
        client.snapshots.delete(name)
        assert not any(t.name == name for t in client.snapshots.list())
    assert capsule.commands.run("echo alive").stdout == "alive\n"


def test_destroy(capsule):
    capsule.destroy(wait=True)
    with WrennClient() as client:
        try:
            info = client.capsules.get(capsule.capsule_id)
            assert info.status in (Status.stopped, Status.missing)
        except WrennNotFoundError:
            pass
