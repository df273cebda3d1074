"""The program the sandbox runs first, inside the sandboxed process (stdlib only, run as ``python -c``).

It reads its job (JSON) from stdin, applies the resource limits, installs an audit hook that
refuses network sockets and writes outside the working directory, then runs the candidate code
and each test separately, writing one JSON record per event to ``RESULTS_FILE`` in the working
directory: ``load``, ``start`` (test i begins: tells which test a timeout hit), ``test``,
``refused``, ``exit`` and ``done``. The parent trusts ``done`` only with the job's nonce, so a
program that exits early (``exit(0)``, ``os._exit(0)``) never counts as passing.

This is not imported by redraft: its source text is passed to the interpreter.
"""

import builtins
import json
import linecache
import os
import resource
import socket
import sys
import traceback

RESULTS_FILE = ".redraft-results"
TRACEBACK_CHARS = 4000
HARNESS_FILENAME = "<string>"  # what ``python -c`` names this code in tracebacks


def _main() -> None:
    job = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # the program sees an empty stdin
    os.close(devnull)
    nonce = job["nonce"]
    limits = job["limits"]
    _set_limits(limits)
    out = os.open(RESULTS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)

    def record(event: str, **data: object) -> None:
        try:
            os.write(out, (json.dumps({"event": event, **data}) + "\n").encode())
        except OSError:
            pass

    _install_guard(record, job["writable"])
    sys.argv = ["solution.py"]
    sys.path.insert(0, os.getcwd())
    tests = job["tests"]
    namespace = {"__name__": "solution" if tests else "__main__", "__builtins__": builtins}
    try:
        if job["setup"]:
            _run(job["setup"], "setup.py", namespace)
        _run(job["code"], "solution.py", namespace)
    except SystemExit as exc:
        if tests:
            record("load", ok=False, error=f"the program called exit({exc.code!r}) while loading")
        else:
            record("exit", code=_exit_code(exc.code))
            _finish(record, nonce, 0)
        _finish(record, nonce, 1)
    except BaseException as exc:  # the candidate's own failure is data, not our crash
        record("load", ok=False, error=_format(exc))
        _finish(record, nonce, 1)
    record("load", ok=True)
    for index, test in enumerate(tests):
        record("start", index=index)
        try:
            _run(test, f"test_{index}.py", namespace)
            record("test", index=index, passed=True)
        except SystemExit as exc:
            record("test", index=index, passed=False, error=f"the program called exit({exc.code!r}) during the test")
        except BaseException as exc:
            record("test", index=index, passed=False, error=_format(exc), kind=type(exc).__name__)
    _finish(record, nonce, 0)


def _set_limits(limits: dict) -> None:
    memory = limits["memory_mb"] << 20
    cpu = max(1, int(limits["cpu_seconds"] + 0.999))
    pairs = [(resource.RLIMIT_AS, memory), (resource.RLIMIT_FSIZE, limits["file_mb"] << 20),
             (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, 256)]
    if limits.get("nproc"):
        pairs.append((resource.RLIMIT_NPROC, limits["nproc"]))
    for which, value in pairs:
        resource.setrlimit(which, (value, value))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # soft: SIGXCPU; hard: SIGKILL


def _install_guard(record, writable: list) -> None:
    """Refuse, at the Python layer, network sockets and writes outside the allowed directories."""
    roots = [os.path.realpath(p) for p in writable]
    network = {socket.AF_INET, socket.AF_INET6}
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def allowed(path: object) -> bool:
        if isinstance(path, int):
            return True  # an already open descriptor
        try:
            real = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return real == os.devnull or any(real == r or real.startswith(r + os.sep) for r in roots)

    def refuse(reason: str) -> None:
        record("refused", reason=reason)
        raise PermissionError(f"redraft sandbox: {reason}")

    def hook(event: str, args: tuple) -> None:
        if event == "socket.__new__" and args[1] in network:
            refuse("network access is not allowed (socket creation refused)")
        elif event in ("socket.connect", "socket.sendto", "socket.bind") and args[0].family in network:
            refuse(f"network access is not allowed ({event} {args[1]!r})")
        elif event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & write_flags)
            if writing and not allowed(path):
                refuse(f"write outside the working directory refused: {path!r}")
        elif event in ("os.remove", "os.rmdir", "os.mkdir", "os.rename", "os.chmod", "os.truncate",
                       "shutil.rmtree"):
            targets = args[:2] if event == "os.rename" else args[:1]
            for target in targets:
                if not allowed(target):
                    refuse(f"{event} outside the working directory refused: {target!r}")
        elif event in ("os.symlink", "os.link") and not allowed(args[1]):  # the new name must be inside
            refuse(f"{event} outside the working directory refused: {args[1]!r}")

    sys.addaudithook(hook)


def _run(source: str, filename: str, namespace: dict) -> None:
    # registered in linecache, so tracebacks show the failing line's source
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)


def _format(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == HARNESS_FILENAME:
        tb = tb.tb_next  # hide the harness's own frames
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return text if len(text) <= TRACEBACK_CHARS else "…" + text[-TRACEBACK_CHARS:]


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _finish(record, nonce: str, status: int) -> None:
    if status == 0:
        record("done", nonce=nonce)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass  # the program may have closed its own stdout
    os._exit(0)  # skip the program's atexit handlers and non-daemon threads


_main()
