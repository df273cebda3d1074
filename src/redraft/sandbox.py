"""Run untrusted Python (model-written code and tests) in a sandbox; never in-process.

Layers, strongest available first (``isolation()`` says which are in force on this machine, and
every ``Outcome`` carries that report):

- **Namespaces** (``unshare``, needs root or user namespaces): a new network namespace (no
  interface but a down loopback: nothing, not even 127.0.0.1, is reachable), a new PID
  namespace (the program is pid 1; when it dies the kernel kills everything it started), a new
  mount namespace with a private ``/proc``, empty tmpfs over ``/tmp``, ``/var/tmp``,
  ``/dev/shm`` and the invoking user's home (only the interpreter's own directory is bound back).
- **A throwaway uid** (``setpriv``): the program runs as an otherwise unused uid with no
  capabilities and no_new_privs, so file permissions refuse writes outside its working
  directory (owned by that uid) and reads of root-only files; one uid per concurrent run.
- **cgroups** (v1 or v2, when writable): ``pids.max`` caps the process count (RLIMIT_NPROC does
  not bind for root, and is per-user), ``memory`` caps the total across all its processes, and
  the group lists every process for the final kill.
- **rlimits** (always): address space, CPU seconds (SIGXCPU), file size, no core files.
- **An audit hook** (always, inside the process, see ``sandbox_harness``): refuses network
  sockets and writes outside the working directory with a reason the outcome reports as
  ``refused``. It is the network barrier of last resort where namespaces are unavailable.
- **The parent**: a wall-clock limit, stdout/stderr read incrementally and capped (the run is
  killed when a stream passes the cap), a scrubbed environment, a fresh directory, and a kill
  of the process group, the namespace and the cgroup's processes at the end of every run.

``run(code, tests)`` loads ``code`` and runs each test (a Python snippet, e.g. an assert)
separately, so the outcome names the first failing test and its traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HARNESS_SOURCE = (Path(__file__).with_name("sandbox_harness.py")).read_text(encoding="utf-8")
RESULTS_FILE = ".redraft-results"
UID_BASE = 100_000  # throwaway uids: 100000 + 64 * (pid % 8192) + slot; no passwd entries
UID_SLOTS = 64

STATUSES = ("passed", "failed", "timeout", "memory", "refused", "output_limit", "error")


class SandboxError(RuntimeError):
    """The sandbox itself could not run (not the program's failure)."""


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 10.0
    cpu_seconds: float = 10.0
    memory_mb: int = 1024  # per process (RLIMIT_AS) and, with a memory cgroup, for the whole run
    max_processes: int = 32  # the whole run (cgroup pids.max), program included
    output_bytes: int = 1 << 20  # per stream; more stops the run
    file_mb: int = 16


@dataclass(frozen=True)
class TestResult:
    index: int
    source: str
    passed: bool
    error: str | None = None  # traceback
    kind: str | None = None  # exception class name


@dataclass(frozen=True)
class Outcome:
    """What happened: ``status`` is one of STATUSES; ``reason`` one line saying why."""

    status: str
    reason: str
    tests: tuple[TestResult, ...] = ()
    load_error: str | None = None  # traceback when the code itself failed to load
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    returncode: int | None = None
    isolation: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def n_passed(self) -> int:
        return sum(t.passed for t in self.tests)

    def pass_fraction(self, total: int | None = None) -> float:
        total = total if total is not None else len(self.tests)
        if total == 0:
            return 1.0 if self.passed else 0.0
        return self.n_passed / total

    @property
    def first_failure(self) -> TestResult | None:
        return next((t for t in self.tests if not t.passed), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tests"] = [asdict(t) for t in self.tests]
        return data


# -- what this machine allows ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Controller:
    name: str  # "pids" | "memory"
    base: Path  # the directory under which this process may create groups
    v2: bool


@dataclass(frozen=True)
class _Setup:
    namespaces: bool
    controllers: tuple[_Controller, ...]
    report: dict[str, str]


_setup: _Setup | None = None
_setup_lock = threading.Lock()


def _cgroup_controllers() -> list[_Controller]:
    """Writable pids/memory cgroup controllers (v1 hierarchies or the v2 unified one)."""
    if os.environ.get("REDRAFT_SANDBOX_NO_CGROUPS") == "1":
        return []
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        own = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    paths_v1: dict[str, str] = {}
    path_v2 = None
    for line in own:
        _, names, path = line.split(":", 2)
        if names == "":
            path_v2 = path
        for name in names.split(","):
            paths_v1[name] = path
    found: list[_Controller] = []
    for line in mounts:
        parts = line.split()
        if len(parts) < 4:
            continue
        mountpoint, fstype, options = parts[1], parts[2], parts[3].split(",")
        for name in ("pids", "memory"):
            if fstype == "cgroup" and name in options and name in paths_v1:
                found.append(_Controller(name, Path(mountpoint + paths_v1[name]), False))
            elif fstype == "cgroup2" and path_v2 is not None:
                base = Path(mountpoint + path_v2)
                try:
                    enabled = (base / "cgroup.subtree_control").read_text().split()
                except OSError:
                    enabled = []
                if name in enabled:
                    found.append(_Controller(name, base, True))
    usable: dict[str, _Controller] = {}
    for controller in found:
        if controller.name in usable:
            continue
        probe = controller.base / f"redraft-probe-{os.getpid()}"
        try:
            probe.mkdir()
            limit_file = ("pids.max" if controller.name == "pids" else
                          "memory.max" if controller.v2 else "memory.limit_in_bytes")
            (probe / limit_file).write_text("64" if controller.name == "pids" else str(256 << 20))
            usable[controller.name] = controller
        except OSError:
            pass
        finally:
            try:
                probe.rmdir()
            except OSError:
                pass
    return list(usable.values())


def isolation() -> dict[str, str]:
    """Which barriers are in force here, by concern (probed once per process)."""
    return dict(_get_setup().report)


def _get_setup() -> _Setup:
    global _setup
    with _setup_lock:
        if _setup is None:
            _setup = _probe()
        return _setup


def _probe() -> _Setup:
    controllers = tuple(_cgroup_controllers())
    names = {c.name for c in controllers}
    namespaces = False
    if (os.environ.get("REDRAFT_SANDBOX_MODE") != "plain" and os.geteuid() == 0
            and shutil.which("unshare") and shutil.which("setpriv")):
        trial = _Setup(True, (), {})
        try:
            namespaces = _execute("pass", (), "", Limits(wall_seconds=20), trial).status == "passed"
        except (OSError, SandboxError):
            namespaces = False
    processes = []
    if "pids" in names:
        processes.append("cgroup pids.max")
    if namespaces:
        processes.append("pid namespace (kill all on exit)")
    elif os.geteuid() != 0:
        processes.append("RLIMIT_NPROC (per user)")
    processes.append("process-group kill")
    report = {
        "network": "network namespace + audit hook" if namespaces else "audit hook only (socket creation refused)",
        "processes": " + ".join(processes) if ("pids" in names or os.geteuid() != 0)
        else " + ".join(processes) + " (no process-count limit: as root without a pids cgroup)",
        "filesystem": ("throwaway uid, private /tmp and home + audit hook" if namespaces
                       else "audit hook only (refuses writes outside the working directory)"),
        "memory": "RLIMIT_AS" + (" + memory cgroup" if "memory" in names else ""),
    }
    return _Setup(namespaces, controllers, report)


# -- throwaway uids ------------------------------------------------------------------------------------------

_uid_lock = threading.Condition()
_uids_in_use: set[int] = set()


def _take_uid() -> int:
    base = UID_BASE + UID_SLOTS * (os.getpid() % 8192)
    with _uid_lock:
        while True:
            for slot in range(UID_SLOTS):
                if base + slot not in _uids_in_use:
                    _uids_in_use.add(base + slot)
                    return base + slot
            _uid_lock.wait()


def _give_uid(uid: int) -> None:
    with _uid_lock:
        _uids_in_use.discard(uid)
        _uid_lock.notify()


# -- cgroups for one run -------------------------------------------------------------------------------------

class _Groups:
    def __init__(self, controllers: Sequence[_Controller], name: str, limits: Limits) -> None:
        self.dirs: list[tuple[_Controller, Path]] = []
        for controller in controllers:
            path = controller.base / name
            path.mkdir()
            self.dirs.append((controller, path))
            if controller.name == "pids":
                (path / "pids.max").write_text(str(limits.max_processes))
            else:
                limit = str(limits.memory_mb << 20)
                (path / ("memory.max" if controller.v2 else "memory.limit_in_bytes")).write_text(limit)
                if controller.v2 and (path / "memory.swap.max").exists():
                    (path / "memory.swap.max").write_text("0")

    def procs_files(self) -> list[str]:
        return [str(path / "cgroup.procs") for _, path in self.dirs]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for _, path in self.dirs:
            try:
                found.update(int(p) for p in (path / "cgroup.procs").read_text().split())
            except OSError:
                pass
        return found

    def kill_all(self) -> None:
        for controller, path in self.dirs:
            if controller.v2 and (path / "cgroup.kill").exists():
                try:
                    (path / "cgroup.kill").write_text("1")
                except OSError:
                    pass
        for _ in range(200):  # a capped fork bomb converges: pids.max bounds what is left to kill
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.005)

    def oom_killed(self) -> bool:
        for controller, path in self.dirs:
            if controller.name != "memory":
                continue
            try:
                text = (path / ("memory.events" if controller.v2 else "memory.oom_control")).read_text()
            except OSError:
                continue
            for line in text.splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and value.strip().isdigit() and int(value) > 0:
                    return True
        return False

    def remove(self) -> None:
        for _, path in self.dirs:
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # processes still exiting
                    time.sleep(0.01)


# -- one run -------------------------------------------------------------------------------------------------

def run(code: str, tests: Sequence[str] = (), *, setup: str = "", limits: Limits | None = None) -> Outcome:
    """Run ``code`` (then each test, separately) in the sandbox. With no tests, ``code`` runs as
    ``__main__`` and passes when it finishes with exit status 0."""
    return _execute(code, tuple(tests), setup, limits or Limits(), _get_setup())


async def run_async(code: str, tests: Sequence[str] = (), *, setup: str = "", limits: Limits | None = None) -> Outcome:
    return await asyncio.to_thread(run, code, tests, setup=setup, limits=limits)


_SHELL_JOIN_CGROUPS = ('n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; '
                       'exec "$@"')

# Runs as root inside the new namespaces: bind the interpreter back into a hidden home, hide the
# shared temp dirs and the home, enter the working dir, then drop to the throwaway uid.
_SHELL_NAMESPACE = r"""set -e
work=$1; uid=$2; nstage=$3; shift 3
i=0; while [ $i -lt "$nstage" ]; do mount --bind "$2" "$1"; shift 2; i=$((i+1)); done
nhide=$1; shift
i=0; while [ $i -lt "$nhide" ]; do mount -t tmpfs -o mode=0755,size=1m tmpfs "$1"; shift; i=$((i+1)); done
nback=$1; shift
i=0; while [ $i -lt "$nback" ]; do mkdir -p "$2"; mount --bind "$1" "$2"; shift 2; i=$((i+1)); done
cd "$work"
ntmp=$1; shift
i=0; while [ $i -lt "$ntmp" ]; do mount -t tmpfs -o mode=1777,size=64m tmpfs "$1"; shift; i=$((i+1)); done
exec env -i PATH=/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 \
  setpriv --reuid="$uid" --regid="$uid" --clear-groups --no-new-privs --bounding-set=-all --inh-caps=-all -- "$@"
"""


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _namespace_command(root: Path, work: Path, uid: int, program: list[str]) -> list[str]:
    home = os.path.realpath(os.path.expanduser("~"))
    keep = sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix),
                   os.path.dirname(os.path.realpath(sys.executable))})
    temp_dirs = [d for d in ("/tmp", "/var/tmp", "/dev/shm") if os.path.isdir(d)
                 and not any(_under(k, d) for k in keep)]
    hide = [home] if home not in ("/", "") and os.path.isdir(home) and not any(_under(home, t) for t in temp_dirs) \
        else []
    staged = [k for k in keep if hide and _under(k, home) and k != home]
    staged = [k for k in staged if not any(_under(k, other) and k != other for other in staged)]
    stage_args: list[str] = []
    back_args: list[str] = []
    for index, path in enumerate(staged):
        stage = root / f"stage{index}"
        stage.mkdir()
        stage_args += [str(stage), path]
        back_args += [str(stage), path]
    return ["unshare", "--mount", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "--propagation",
            "private", "--", "/bin/sh", "-c", _SHELL_NAMESPACE, "sh", str(work), str(uid),
            str(len(staged)), *stage_args, str(len(hide)), *hide, str(len(staged)), *back_args,
            str(len(temp_dirs)), *temp_dirs, *program]


def _execute(code: str, tests: tuple[str, ...], setup_code: str, limits: Limits, setup: _Setup) -> Outcome:
    started = time.perf_counter()
    nonce = secrets.token_hex(16)
    root = Path(tempfile.mkdtemp(prefix="redraft-sandbox-"))
    work = root / "work"
    uid = _take_uid() if setup.namespaces else None
    groups: _Groups | None = None
    try:
        root.chmod(0o711)  # the program may pass through to its own dir, never list or write here
        work.mkdir(mode=0o700)
        if uid is not None:
            os.chown(work, uid, uid)
        job = {"nonce": nonce, "code": code, "tests": list(tests), "setup": setup_code,
               "writable": [str(work)] + (["/tmp"] if setup.namespaces else []),
               "limits": {**asdict(limits), "nproc": limits.max_processes if os.geteuid() != 0 else 0}}
        program = [sys.executable, "-I", "-c", HARNESS_SOURCE]
        if setup.controllers:
            groups = _Groups(setup.controllers, f"redraft-{os.getpid()}-{nonce[:12]}", limits)
        if setup.namespaces:
            assert uid is not None
            command = _namespace_command(root, work, uid, program)
        else:
            command = program
        if groups is not None:
            files = groups.procs_files()
            command = ["/bin/sh", "-c", _SHELL_JOIN_CGROUPS, "sh", str(len(files)), *files, *command]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.Popen(command, cwd=work, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, close_fds=True)
        try:
            streams = _pump(proc, json.dumps(job).encode(), limits, started)
        finally:
            _kill(proc, groups)
        events = _read_events(work / RESULTS_FILE)
        oom = groups.oom_killed() if groups is not None else False
        return _outcome(streams, events, nonce, tests, proc.returncode, limits, oom,
                        time.perf_counter() - started, setup.report)
    finally:
        if groups is not None:
            groups.remove()
        _remove_root(root)
        if uid is not None:
            _give_uid(uid)


@dataclass
class _Streams:
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    timed_out: bool = False
    overflow: str | None = None  # the stream that passed the cap


def _pump(proc: subprocess.Popen, job: bytes, limits: Limits, started: float) -> _Streams:
    """Feed the job, read both streams incrementally, stop at the deadline or at the output cap."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    streams = _Streams()
    deadline = started + limits.wall_seconds
    selector = selectors.DefaultSelector()
    pending = memoryview(job)
    os.set_blocking(proc.stdin.fileno(), False)
    selector.register(proc.stdin, selectors.EVENT_WRITE, "stdin")
    selector.register(proc.stdout, selectors.EVENT_READ, "stdout")
    selector.register(proc.stderr, selectors.EVENT_READ, "stderr")
    try:
        while selector.get_map():
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                streams.timed_out = True
                return streams
            for key, _ in selector.select(timeout=min(remaining, 0.5)):
                if key.data == "stdin":
                    try:
                        pending = pending[os.write(key.fd, pending[:65536]):]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:  # it died before reading its job: the outcome says so
                        pending = pending[:0]
                    if not pending:
                        selector.unregister(key.fileobj)
                        proc.stdin.close()
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffer = streams.stdout if key.data == "stdout" else streams.stderr
                room = limits.output_bytes - len(buffer)
                buffer.extend(chunk[:max(room, 0)])
                if len(chunk) > room:
                    streams.overflow = key.data
                    return streams
        try:
            proc.wait(timeout=max(deadline - time.perf_counter(), 0.01))
        except subprocess.TimeoutExpired:
            streams.timed_out = True
        return streams
    finally:
        selector.close()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            try:
                pipe.close()
            except OSError:
                pass


def _kill(proc: subprocess.Popen, groups: _Groups | None) -> None:
    """Kill the program and everything it started: process group, namespace (via its pid 1), cgroup."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if groups is not None:
        groups.kill_all()
    proc.wait()


def _remove_root(root: Path) -> None:
    # a stage dir is a mount point only inside the namespace; if one ever showed up here, deleting
    # "its" contents would delete the interpreter: refuse instead
    for stage in root.glob("stage*"):
        if os.path.ismount(stage):
            raise SandboxError(f"{stage} is still a mount point; not removing {root}")
        stage.rmdir()
    shutil.rmtree(root, ignore_errors=True)


def _read_events(path: Path) -> list[dict[str, Any]]:
    events = []
    try:
        with open(path, "rb") as handle:
            for line in handle.read(64 << 20).splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    events.append(event)
    except OSError:
        pass
    return events


def _outcome(streams: _Streams, events: list[dict[str, Any]], nonce: str, tests: tuple[str, ...],
             returncode: int | None, limits: Limits, oom: bool, seconds: float,
             report: dict[str, str]) -> Outcome:
    results: dict[int, TestResult] = {}
    load_error = None
    refusals: list[str] = []
    exit_code = None
    last_started = None
    done = False
    for event in events:
        kind = event.get("event")
        if kind == "test" and isinstance(event.get("index"), int) and 0 <= event["index"] < len(tests):
            index = event["index"]
            results[index] = TestResult(index, tests[index], bool(event.get("passed")), event.get("error"),
                                        event.get("kind"))
        elif kind == "start":
            last_started = event.get("index")
        elif kind == "load" and not event.get("ok"):
            load_error = str(event.get("error"))
        elif kind == "refused":
            refusals.append(str(event.get("reason")))
        elif kind == "exit":
            exit_code = event.get("code")
        elif kind == "done" and event.get("nonce") == nonce:
            done = True
    ordered = tuple(results[i] for i in sorted(results))
    common = dict(tests=ordered, load_error=load_error, stdout=streams.stdout.decode("utf-8", "replace"),
                  stderr=streams.stderr.decode("utf-8", "replace"), seconds=seconds, returncode=returncode,
                  isolation=report)
    running = f" during test {last_started}" if last_started is not None and last_started not in results else ""
    memory_error = any(t.kind == "MemoryError" for t in ordered) or (
        load_error is not None and "MemoryError" in load_error.strip().splitlines()[-1:][0])
    if streams.timed_out:
        return Outcome("timeout", f"wall-clock limit of {limits.wall_seconds:g} s reached{running}", **common)
    if streams.overflow:
        return Outcome("output_limit", f"{streams.overflow} passed {limits.output_bytes:,} bytes; stopped", **common)
    if returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        return Outcome("timeout", f"CPU limit of {limits.cpu_seconds:g} s reached{running}", **common)
    if oom or memory_error:
        return Outcome("memory", f"memory limit of {limits.memory_mb} MB reached{running}", **common)
    if refusals:
        return Outcome("refused", refusals[0], **common)
    if load_error is not None:
        last = load_error.strip().splitlines()[-1] if load_error.strip() else "error"
        return Outcome("failed", f"the code failed to load: {last}", **common)
    if not done:
        how = f"was killed by signal {-returncode}" if returncode is not None and returncode < 0 \
            else f"exited with status {returncode}"
        return Outcome("failed", f"the program {how} before finishing{running}", **common)
    if exit_code not in (None, 0):
        return Outcome("failed", f"the program exited with status {exit_code}", **common)
    failure = next((t for t in ordered if not t.passed), None)
    if failure is not None:
        last = (failure.error or "failed").strip().splitlines()[-1]
        return Outcome("failed", f"test {failure.index} failed: {last}", **common)
    return Outcome("passed", f"all {len(tests)} test(s) passed" if tests else "finished with status 0", **common)
