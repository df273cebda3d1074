"""Run untrusted Python in a separate, limited process: never in-process.

A first line of defence (process group, CPU/memory/file-size limits, a fresh directory, a
scrubbed environment, a wall-clock timeout, capped output). The full sandbox is its own module.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

OUTPUT_CAP = 64 * 1024


@dataclass(frozen=True)
class ExecResult:
    status: str  # "passed" | "failed" | "timeout"
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def _limits(cpu_seconds: int, memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_python(code: str, timeout: float = 10.0, memory_mb: int = 1024) -> ExecResult:
    with tempfile.TemporaryDirectory(prefix="redraft-exec-") as workdir:
        path = os.path.join(workdir, "program.py")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(code)
        env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "HOME": workdir, "LANG": "C.UTF-8"}
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-I", path], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            preexec_fn=lambda: _limits(int(timeout) + 1, memory_mb << 20),
        )
        try:
            out, err = proc.communicate(timeout=timeout)
            status = "passed" if proc.returncode == 0 else "failed"
        except subprocess.TimeoutExpired:
            status = "timeout"
            out, err = b"", b""
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if proc.poll() is None or status == "timeout":
                out2, err2 = proc.communicate()
                out, err = out or out2, err or err2
        return ExecResult(status, proc.returncode, out[:OUTPUT_CAP].decode("utf-8", "replace"),
                          err[-OUTPUT_CAP:].decode("utf-8", "replace"), time.perf_counter() - started)
