"""The sandbox: structured outcomes, hostile programs contained with their reason, no leaks."""

from __future__ import annotations

import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from redraft import sandbox
from redraft.sandbox import Limits

FAST = Limits(wall_seconds=3, cpu_seconds=2, memory_mb=256, max_processes=12, output_bytes=64 * 1024)


def sandbox_processes() -> list[int]:
    """Processes run by a sandbox uid, or children of this test process."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        uid = int(fields.get("Uid", "0").split()[0])
        ppid = int(fields.get("PPid", "0").strip())
        if sandbox.UID_BASE <= uid < sandbox.UID_BASE + 8192 * sandbox.UID_SLOTS or ppid == os.getpid():
            found.append((int(entry), fields.get("Name", "").strip(), fields.get("State", "").strip()))
    return found


def assert_no_sandbox_processes() -> None:
    """Nothing of a sandbox still runs now; killed processes whose namespace init died are
    reparented to the system init as zombies, and must be reaped within a few seconds."""
    assert [p for p in sandbox_processes() if not p[2].startswith("Z")] == []
    deadline = time.monotonic() + 10
    while sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sandbox_processes() == []


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def listener():
    """A loopback listener the hostile program tries to reach; records whether anyone got through."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                accepted.append(conn)
                conn.close()
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


def test_outcome_names_the_failing_test_with_traceback():
    outcome = sandbox.run("def inc(x):\n    return x + 2\n", ["assert inc(0) == 2", "assert inc(1) == 2"], limits=FAST)
    assert outcome.status == "failed"
    assert [t.passed for t in outcome.tests] == [True, False]
    assert outcome.first_failure is not None and outcome.first_failure.index == 1
    assert "assert inc(1) == 2" in outcome.first_failure.error and "AssertionError" in outcome.first_failure.error
    assert outcome.reason.startswith("test 1 failed")
    assert outcome.pass_fraction() == 0.5
    assert outcome.seconds > 0


def test_load_error_and_early_exit_do_not_pass():
    broken = sandbox.run("def f(:\n", ["assert True"], limits=FAST)
    assert broken.status == "failed" and "SyntaxError" in broken.load_error
    # exit(0) before the tests ran must not look like success
    early = sandbox.run("import os\nos._exit(0)\n", ["assert False"], limits=FAST)
    assert early.status == "failed" and "before finishing" in early.reason
    assert sandbox.run("print('ok')", limits=FAST).passed


def test_isolation_report_is_structured():
    report = sandbox.isolation()
    assert set(report) == {"network", "processes", "filesystem", "memory"}
    assert sandbox.run("pass", limits=FAST).isolation == report


@pytest.fixture
def outside():
    """A path outside the sandbox and outside /tmp (the sandbox may give a run a private, writable /tmp,
    so a checkout under /tmp, as in a CI clone, is not "outside")."""
    base = Path(__file__).resolve().parent
    if base.is_relative_to("/tmp"):
        base = Path("/var/cache")
    path = base / f".sandbox-escape-{os.getpid()}.txt"
    yield path
    path.unlink(missing_ok=True)


def test_hostile_programs_are_contained_concurrently(listener, outside, monkeypatch):
    port, accepted = listener
    monkeypatch.setenv("REDRAFT_TEST_SECRET", "s3cr3t-value")
    hostile = {
        "infinite_loop": ("while True:\n    pass\n", "timeout"),
        "fork_bomb": ("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
                      "timeout"),
        "memory_bomb": ("chunks = []\nwhile True:\n    chunks.append(bytearray(10 ** 7))\n", "memory"),
        "socket_out": (f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\n", "refused"),
        "write_outside": (f"open({str(outside)!r}, 'w').write('x')\n", "refused"),
        "env_secret": ("import os, glob\nprint(os.environ.get('REDRAFT_TEST_SECRET'))\n"
                       "for p in glob.glob('/proc/*/environ'):\n"
                       "    try:\n        print(open(p, 'rb').read())\n    except OSError:\n        pass\n",
                       "passed"),
        "print_gigabytes": ("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", "output_limit"),
        "close_stdout": ("import os\nos.close(1)\nos.close(2)\nx = sum(range(10))\n", "passed"),
        "sleep_holding_child": ("import subprocess, time\nsubprocess.Popen(['sleep', '987654'])\ntime.sleep(1000)\n",
                                "timeout"),
    }
    with ThreadPoolExecutor(len(hostile)) as pool:
        futures = {name: pool.submit(sandbox.run, code, limits=FAST) for name, (code, _) in hostile.items()}
        outcomes = {name: future.result() for name, future in futures.items()}
    for name, (_, expected) in hostile.items():
        assert outcomes[name].status == expected, (name, outcomes[name].reason, outcomes[name].stderr[-500:])
        assert outcomes[name].reason
        assert outcomes[name].seconds < FAST.wall_seconds + 3
    assert "network" in outcomes["socket_out"].reason and not accepted
    assert "outside the working directory" in outcomes["write_outside"].reason and not outside.exists()
    assert "s3cr3t-value" not in outcomes["env_secret"].stdout
    assert len(outcomes["print_gigabytes"].stdout) == FAST.output_bytes
    assert "memory limit" in outcomes["memory_bomb"].reason
    time.sleep(0.2)
    assert_no_sandbox_processes()
    # the sandbox still works after all that
    assert sandbox.run("print(1 + 1)", limits=FAST).stdout.strip() == "2"


def test_fork_count_is_capped():
    code = ("import os, time\nmade = 0\nfor _ in range(40):\n    try:\n        pid = os.fork()\n"
            "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(60)\n        os._exit(0)\n"
            "    made += 1\nprint(made)\n")
    outcome = sandbox.run(code, limits=Limits(wall_seconds=5, max_processes=6))
    if "pids.max" not in outcome.isolation["processes"] and "NPROC" not in outcome.isolation["processes"]:
        pytest.skip("no process-count limit available on this machine")
    assert outcome.passed and 0 < int(outcome.stdout) < 6
    assert_no_sandbox_processes()


@pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need root here")
def test_os_layer_holds_when_python_layer_is_bypassed(listener, outside):
    """A shell escapes the audit hook; the network namespace and the throwaway uid still hold."""
    if not sandbox.isolation()["network"].startswith("network namespace"):
        pytest.skip("no network namespace on this machine")
    port, accepted = listener
    target = outside
    code = ("import subprocess\n"
            f"print(subprocess.run(['bash', '-c', 'exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected'],"
            " capture_output=True, text=True).stderr)\n"
            f"print(subprocess.run(['sh', '-c', 'echo x > {target}'], capture_output=True, text=True).stderr)\n")
    outcome = sandbox.run(code, limits=FAST)
    assert outcome.passed, outcome.reason
    assert "connected" not in outcome.stdout and not accepted
    assert not target.exists()


def test_plain_mode_refuses_network_at_the_socket_layer(listener, monkeypatch):
    """Where namespaces are unavailable, the audit hook alone refuses sockets (and says so)."""
    port, accepted = listener
    monkeypatch.setenv("REDRAFT_SANDBOX_MODE", "plain")
    plain = sandbox._probe()
    assert plain.report["network"].startswith("audit hook")
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}))\n"
    outcome = sandbox._execute(code, (), "", FAST, plain)
    assert outcome.status == "refused" and not accepted
    ok = sandbox._execute("def f():\n    return 3\n", ("assert f() == 3",), "", FAST, plain)
    assert ok.passed


def test_many_concurrent_runs_leak_nothing():
    before_fds = open_fds()
    scratch = Path(os.environ.get("TMPDIR", "/tmp"))
    before_dirs = set(scratch.glob("redraft-sandbox-*"))  # a killed earlier process may have left some
    runs = 500
    trivial = Limits(wall_seconds=20, memory_mb=256)
    started = time.perf_counter()
    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(lambda i: sandbox.run(f"x = {i}", [f"assert x == {i}"], limits=trivial),
                                 range(runs)))
    elapsed = time.perf_counter() - started
    assert sum(o.passed for o in outcomes) == runs, {o.reason for o in outcomes if not o.passed}
    assert open_fds() <= before_fds
    assert_no_sandbox_processes()
    assert set(scratch.glob("redraft-sandbox-*")) - before_dirs == set()
    assert elapsed < 60
