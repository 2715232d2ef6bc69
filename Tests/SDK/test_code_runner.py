"""The SDK's code runner (wrenn.code_runner, wrenn 0.2.0) against the code-runner-beta template that
CodeRunnerTemplateTests has just built from images/recipes/code-runner-beta.recipe on a real platform.

The code runner reaches Jupyter through the capsule port proxy at ``{port}-{capsule}.{host}``: the Swift test sets
WRENN_BASE_URL to ``http://localhost:PORT`` so that host is ``8888-<id>.localhost:PORT``. RFC 6761 makes every
``*.localhost`` name loopback; on Debian glibc resolves them with nss-myhostname (scripts/apt-packages.txt installs
libnss-myhostname). Only where that is missing does this module map them to 127.0.0.1 itself; the requests, their
Host headers and the proxy path are the real ones either way.
"""

import socket

try:
    socket.getaddrinfo("wrenn-probe.localhost", 80)
except socket.gaierror:
    _getaddrinfo = socket.getaddrinfo

    def _localhost_names_are_loopback(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return _getaddrinfo(host, *args, **kwargs)

    socket.getaddrinfo = _localhost_names_are_loopback

import asyncio  # noqa: E402

import pytest  # noqa: E402

from wrenn.code_runner import AsyncCapsule, Capsule  # noqa: E402

# TCG guests are slow: a cold import of matplotlib takes tens of seconds.
SLOW = 300


@pytest.fixture(scope="module")
def runner():
    capsule = Capsule(wait=True)
    try:
        yield capsule
    finally:
        capsule.destroy()


def test_print_one_plus_one(runner):
    assert runner.info.template == "code-runner-beta"
    execution = runner.run_code("print(1+1)", timeout=SLOW, jupyter_timeout=SLOW)
    assert execution.error is None, execution.error
    assert not execution.timed_out
    assert "".join(execution.logs.stdout) == "2\n"
    assert execution.logs.stderr == []


def test_state_survives_between_cells_and_expressions_are_results(runner):
    runner.run_code("x = 40", timeout=SLOW)
    execution = runner.run_code("x + 2", timeout=SLOW)
    assert execution.error is None, execution.error
    main = [r for r in execution.results if r.is_main_result]
    assert len(main) == 1 and main[0].text == "42"
    assert execution.execution_count is not None


def test_stderr_and_errors(runner):
    execution = runner.run_code("import sys\nprint('to stderr', file=sys.stderr)", timeout=SLOW)
    assert execution.error is None, execution.error
    assert "".join(execution.logs.stderr) == "to stderr\n"

    failed = runner.run_code("1/0", timeout=SLOW)
    assert failed.error is not None
    assert failed.error.name == "ZeroDivisionError"
    assert "division by zero" in failed.error.value
    assert "ZeroDivisionError" in failed.error.traceback

    undefined = runner.run_code("not_defined_anywhere", timeout=SLOW)
    assert undefined.error is not None and undefined.error.name == "NameError"


def test_the_data_stack_and_a_chart(runner):
    execution = runner.run_code(
        "import numpy, pandas, seaborn, requests\n"
        "import matplotlib.pyplot as plt\n"
        "print(int(numpy.arange(5).sum()), len(pandas.DataFrame({'a': [1, 2, 3]})))\n"
        "plt.plot([1, 2, 3], [3, 1, 2])\n"
        "plt.show()\n",
        timeout=SLOW,
    )
    assert execution.error is None, execution.error
    assert "".join(execution.logs.stdout) == "10 3\n"
    assert any(result.png for result in execution.results), [r.formats() for r in execution.results]


def test_callbacks_stream_output(runner):
    seen = []
    execution = runner.run_code(
        "for i in range(3):\n    print('line', i)",
        timeout=SLOW,
        on_stdout=seen.append,
    )
    assert execution.error is None, execution.error
    assert "".join(seen) == "line 0\nline 1\nline 2\n"


def test_async_capsule():
    async def main():
        capsule = await AsyncCapsule.create(wait=True)
        try:
            execution = await capsule.run_code("print(6*7)", timeout=SLOW, jupyter_timeout=SLOW)
            assert execution.error is None, execution.error
            assert "".join(execution.logs.stdout) == "42\n"
        finally:
            await capsule.destroy()

    asyncio.run(main())
