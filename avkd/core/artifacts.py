"""Versioned artifacts: a directory with a manifest ``avkd.json`` beside its payload.

The manifest records what the artifact is (``kind``, ``schema``), where it came from (resolved ``config``,
``inputs`` with their ids, the command line, package versions) and what it holds (``files`` with size and
sha256, ``metrics``). Its ``id`` is a content hash of kind, schema, config, input ids and payload hashes (log
files such as a training run's per-epoch timings excepted), so two runs that produced the same thing from the
same inputs share an id, and any change shows.

Atomicity: a stage builds its artifact in the temporary sibling ``<out>.partial`` and renames it onto ``<out>``
only after the complete manifest is written, so a killed job never leaves something that looks finished. The
partial directory keeps whatever the stage saved so far; ``--resume`` continues from it. A lock file in the partial
directory (process id and host) stops a second run from writing into it while the first is alive.

Verification: every artifact a stage reads is checked against its manifest first (:func:`verify_artifact`): each
listed file exists with its size, small files hash to their sha256, large ones (:data:`SAMPLE_THRESHOLD` and up)
to a hash of three sampled blocks recorded at commit, and the id is recomputed from the manifest, so an edited
config, a changed hash or another model's weights are refused with one line. ``avkd artifacts verify --full``
hashes everything.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import socket
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from avkd import __version__
from avkd.core.errors import ArtifactError

MANIFEST = "avkd.json"
PARTIAL_SUFFIX = ".partial"

# The kinds of artifact avkd writes: one table, one place. Each maps to the schema this version writes and
# reads; a newer schema on disk cannot be read (upgrade avkd), an older one is read as documented per kind.
LRS2_FEATURES = "lrs2-features"  # avkd preprocess lrs2 (avkd.data.lrs2.preprocess)
MOSEI_FEATURES = "mosei-features"  # avkd preprocess mosei (avkd.data.mosei.ingest)
CLIPS_FEATURES = "clips-features"  # avkd preprocess clips (avkd.data.clips.preprocess)
MODEL = "model"  # avkd train / distill / import (avkd.models.io)
EVALUATION = "evaluation"  # avkd evaluate (each task's evaluation stage)
REPORT = "report"  # avkd report (avkd.report)
MFH_SIMULATION = "mfh-simulation"  # avkd mfh simulate (avkd.mfh.simulate)
MFH_GAMMA_SWEEP = "mfh-gamma-sweep"  # avkd mfh sweep (avkd.mfh.gamma_sweep)
MFH_DIAGNOSIS = "mfh-diagnosis"  # avkd mfh diagnose (avkd.mfh.diagnose)
EXPORT = "export"  # avkd export (avkd.models.export)
BENCH = "bench"  # avkd bench (avkd.models.bench)

SCHEMAS: dict[str, int] = {
    LRS2_FEATURES: 1,
    MOSEI_FEATURES: 2,
    CLIPS_FEATURES: 1,
    MODEL: 1,
    EVALUATION: 1,
    REPORT: 1,
    MFH_SIMULATION: 1,
    MFH_GAMMA_SWEEP: 1,
    MFH_DIAGNOSIS: 1,
    EXPORT: 1,
    BENCH: 1,
}


#: The command line recorded in manifests; the CLI sets it (``sys.argv`` is the test runner's under pytest).
_command_line: list[str] | None = None


def set_command_line(argv: list[str]) -> None:
    global _command_line
    _command_line = list(argv)


def register_kind(kind: str, schema: int) -> None:
    """Declare an artifact kind beyond the built-in table (an extension's, or a test's)."""
    SCHEMAS[kind] = schema


@dataclass
class Artifact:
    """A complete (or, when loaded with ``allow_partial``, partial) artifact on disk."""

    path: Path
    manifest: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def id(self) -> str:
        return self.manifest["id"]

    @property
    def schema(self) -> int:
        return self.manifest["schema"]

    @property
    def status(self) -> str:
        return self.manifest["status"]

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest.get("config", {})

    @property
    def metrics(self) -> dict[str, Any]:
        return self.manifest.get("metrics", {})

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return self.manifest.get("files", {})

    def file(self, name: str) -> Path:
        return self.path / name

    def ref(self) -> dict[str, str]:
        """How a downstream manifest names this artifact in its ``inputs``."""
        return {"path": str(self.path.resolve()), "id": self.id, "kind": self.kind}


# --------------------------------------------------------------------------------------------- files


def sha256_file(path: Path, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a same-directory temporary file, fsync, then ``os.replace``: readers see old or new, never half."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened for fsync
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ------------------------------------------------------------------------------------------ loading


#: Files at least this large are verified on read by size and a sampled hash; smaller ones by their sha256.
SAMPLE_THRESHOLD = 8 << 20
_SAMPLE_BLOCK = 1 << 16
_TYPES = {"kind": str, "schema": int, "status": str}
LOCK = ".lock"


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the artifact at ``path``, with its required fields of the right types (one line if not)."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not path.exists():
        raise ArtifactError(f"{path}: no such artifact")
    if not manifest_path.is_file():
        raise ArtifactError(f"{path}: not an avkd artifact (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{manifest_path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{manifest_path}: a manifest is a JSON object, found {type(manifest).__name__}")
    for key, tp in _TYPES.items():
        if key not in manifest:
            raise ArtifactError(f"{manifest_path}: manifest lacks {key!r}")
        value = manifest[key]
        if not isinstance(value, tp) or isinstance(value, bool):
            raise ArtifactError(f"{manifest_path}: {key!r} is {value!r}, expected {tp.__name__}")
    for key, tp in (("files", dict), ("inputs", list), ("config", dict), ("metrics", dict)):
        if key in manifest and not isinstance(manifest[key], tp):
            raise ArtifactError(
                f"{manifest_path}: {key!r} is not a JSON {'object' if tp is dict else 'list'}"
            )
    return manifest


def load_artifact(
    path: str | Path,
    kind: str | Iterable[str] | None = None,
    allow_partial: bool = False,
    verify: bool = True,
) -> Artifact:
    """Open an artifact, checking kind, schema, completeness and (``verify``) its payload against the manifest;
    every problem is one line naming the file."""
    path = Path(path)
    if not path.exists() and Path(str(path) + PARTIAL_SUFFIX).exists() and not allow_partial:
        raise ArtifactError(
            f"{path}: only a partial run exists ({path}{PARTIAL_SUFFIX}); finish it with the same command and --resume"
        )
    manifest = read_manifest(path)
    found = manifest["kind"]
    if kind is not None:
        wanted = {kind} if isinstance(kind, str) else set(kind)
        if found not in wanted:
            raise ArtifactError(
                f"{path}: is a {found!r} artifact, expected {' or '.join(sorted(map(repr, wanted)))}"
            )
    current = SCHEMAS.get(found)  # a kind this avkd does not know (a newer one) can still be shown
    if current is not None and manifest["schema"] > current:
        raise ArtifactError(
            f"{path}: {found} schema {manifest['schema']} is newer than this avkd ({__version__}) reads "
            f"(schema {current}); upgrade avkd"
        )
    if manifest["status"] != "complete" and not allow_partial:
        raise ArtifactError(
            f"{path}: artifact is {manifest['status']}, not complete; finish it with the same command and --resume"
        )
    artifact = Artifact(path=path, manifest=manifest)
    if verify and manifest["status"] == "complete":
        problems = verify_artifact(artifact)
        if problems:
            more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
            raise ArtifactError(f"{problems[0]}{more}; the artifact changed after it was written")
    return artifact


def sample_digest(path: Path, size: int) -> str:
    """sha256 of the size and three 64 KiB blocks (start, middle, end): what a fast check of a large file reads."""
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        for offset in (0, max(0, size // 2 - _SAMPLE_BLOCK // 2), max(0, size - _SAMPLE_BLOCK)):
            handle.seek(offset)
            digest.update(handle.read(_SAMPLE_BLOCK))
    return digest.hexdigest()


def file_record(path: Path, sha256: str | None = None) -> dict[str, Any]:
    """A manifest's entry for a payload file: size, sha256 and, for a large file, its sampled digest."""
    size = path.stat().st_size
    record: dict[str, Any] = {"size": size, "sha256": sha256 or sha256_file(path)}
    if size >= SAMPLE_THRESHOLD:
        record["sample"] = sample_digest(path, size)
    return record


def verify_artifact(artifact: Artifact, full: bool = False) -> list[str]:
    """Every way the payload of a complete artifact differs from its manifest, one line each (empty: intact).

    Fast (default): every listed file exists with its size; files under :data:`SAMPLE_THRESHOLD` match their
    sha256, larger ones their sampled digest (manifests written before digests were recorded: size only); the
    id matches the manifest's content. ``full``: every file's sha256, and no unlisted payload file.
    """
    problems = []
    root = artifact.path
    files = artifact.files
    for name, info in files.items():
        file = root / name
        try:
            size = file.stat().st_size
        except OSError:
            problems.append(f"{file}: listed in the manifest but missing")
            continue
        if size != info.get("size"):
            problems.append(f"{file}: {size} bytes, the manifest says {info.get('size')}")
            continue
        try:
            if full or size < SAMPLE_THRESHOLD:
                if sha256_file(file) != info.get("sha256"):
                    problems.append(f"{file}: contents differ from the manifest's sha256")
            elif "sample" in info and sample_digest(file, size) != info["sample"]:
                problems.append(f"{file}: contents differ from the manifest (sampled blocks)")
        except OSError as exc:
            problems.append(f"{file}: unreadable ({exc.strerror or exc})")
    if full:
        for file in sorted(root.rglob("*")):
            name = file.relative_to(root).as_posix()
            if file.is_file() and name not in files and name not in (MANIFEST, LOCK):
                problems.append(f"{file}: not listed in the manifest")
    manifest = artifact.manifest
    if manifest.get("status") == "complete":
        try:
            expected = content_id(
                manifest["kind"],
                manifest["schema"],
                manifest.get("config", {}),
                [i.get("id") for i in manifest.get("inputs", [])],
                files,
            )
        except (KeyError, TypeError, AttributeError):
            problems.append(f"{root / MANIFEST}: files or inputs are malformed")
        else:
            if expected != manifest.get("id"):
                problems.append(
                    f"{root / MANIFEST}: id {manifest.get('id')} does not match its contents ({expected}): the "
                    "manifest was edited"
                )
    return problems


def is_complete(path: Path) -> bool:
    try:
        return read_manifest(path)["status"] == "complete"
    except ArtifactError:
        return False


def finished(out: Path, kind: str, resume: bool) -> Artifact | None:
    """With ``--resume``, a complete artifact at ``out`` is the result: nothing is redone (None otherwise)."""
    if not (resume and is_complete(out)):
        return None
    print(f"{out}: already complete, nothing to resume", file=sys.stderr, flush=True)
    return load_artifact(out, kind=kind)


def artifact_state(artifact: Artifact) -> str:
    """``ok`` for an intact complete artifact, its status for a partial one, ``corrupt: <first problem>``."""
    if artifact.status != "complete":
        return artifact.status
    problems = verify_artifact(artifact)
    return "ok" if not problems else f"corrupt: {problems[0]}"


def lineage(artifact: Artifact, depth: int = 0, seen: set[str] | None = None) -> list[dict[str, Any]]:
    """The artifact and its upstream chain, each entry with its state: intact, corrupt, changed or missing."""
    seen = set() if seen is None else seen
    rows = [
        {
            "depth": depth,
            "kind": artifact.kind,
            "id": artifact.id,
            "path": str(artifact.path),
            "state": artifact_state(artifact),
        }
    ]
    for ref in artifact.manifest.get("inputs", []):
        key = f"{ref.get('id')}@{ref.get('path')}"
        if key in seen:
            continue
        seen.add(key)
        try:
            upstream = load_artifact(ref["path"], allow_partial=True, verify=False)
        except (ArtifactError, KeyError, TypeError):
            rows.append({"depth": depth + 1, **_ref_row(ref), "state": "missing"})
            continue
        if upstream.id != ref.get("id"):
            rows.append({"depth": depth + 1, **_ref_row(ref), "state": f"changed (now {upstream.id})"})
            continue
        rows.extend(lineage(upstream, depth + 1, seen))
    return rows


def _ref_row(ref: dict[str, Any]) -> dict[str, Any]:
    return {"kind": ref.get("kind", "?"), "id": ref.get("id", "?"), "path": ref.get("path", "?")}


# ------------------------------------------------------------------------------------------ writing


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for name in ("torch", "torchaudio", "numpy", "h5py", "av", "decord", "opencv-python-headless"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def content_id(kind: str, schema: int, config: Any, input_ids: list[str], files: dict[str, Any]) -> str:
    blob = json.dumps(
        {
            "kind": kind,
            "schema": schema,
            "config": config,
            "inputs": sorted(input_ids),
            "files": {name: info["sha256"] for name, info in sorted(files.items()) if not info.get("log")},
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class ArtifactWriter:
    """Builds an artifact in ``<out>.partial`` and renames it onto ``<out>`` on :meth:`commit`.

    On entry it enforces the overwrite and resume rules; on an exception it leaves the partial directory (with
    ``status: partial``) for ``--resume``. Stages put payload files under :attr:`workdir` and may call
    :meth:`add_file` as each finishes so that the final commit does not re-read large files for hashing.
    """

    def __init__(
        self,
        out: str | Path,
        kind: str,
        config: dict[str, Any],
        inputs: Iterable[Artifact] = (),
        overwrite: bool = False,
        resume: bool = False,
        command: list[str] | None = None,
        logs: Iterable[str] = (),
        resumable: bool = True,
    ) -> None:
        if kind not in SCHEMAS:
            raise ValueError(f"unregistered artifact kind {kind!r}")
        self.out = Path(out)
        self.kind = kind
        self.schema = SCHEMAS[kind]
        self.config = config
        self.inputs = [a.ref() for a in inputs]
        self.overwrite = overwrite
        self.resume = resume
        if command is None:
            command = _command_line if _command_line is not None else [Path(sys.argv[0]).name, *sys.argv[1:]]
        self.command = command
        self.workdir = Path(str(self.out) + PARTIAL_SUFFIX)
        #: Payload files that record how a run went (timings, throughput) rather than what it produced: kept,
        #: listed with their hashes and marked ``"log": true``, but left out of the content id, so two runs that
        #: produced the same thing share an id however fast they ran.
        self.logs = set(logs)
        #: Whether the stage can continue an interrupted run (``--resume``); a stage that cannot (evaluate, report)
        #: starts over from an interrupted run's leftovers instead of asking for a flag it does not have.
        self.resumable = resumable
        self.resumed = False
        self._locked = False
        self.manifest: dict[str, Any] = {}

    # The rules, in one place: what exists at <out> and <out>.partial decides what happens.
    def __enter__(self) -> ArtifactWriter:
        out, work = self.out, self.workdir
        try:
            self._enter(out, work)
        except OSError as exc:  # an unwritable or missing parent folder, a full disk
            raise ArtifactError(
                f"{exc.filename or out}: cannot write the artifact ({exc.strerror or exc})"
            ) from None
        return self

    def _enter(self, out: Path, work: Path) -> None:
        if out.exists():
            if not (out / MANIFEST).is_file():
                if out.is_dir() and not any(out.iterdir()):
                    out.rmdir()
                else:
                    raise ArtifactError(
                        f"{out}: exists and is not an avkd artifact; refusing to write over it"
                    )
            elif not self.overwrite:
                status = read_manifest(out)["status"]
                raise ArtifactError(
                    f"{out}: a {status} artifact already exists; pass --overwrite to replace it"
                )
        if work.exists():
            _refuse_if_locked(work)
            if self.resume and (work / MANIFEST).is_file():
                self._check_resumable(read_manifest(work))
                self.manifest = read_manifest(work)
                self.resumed = True
            elif self.overwrite or not (work / MANIFEST).is_file() or not self.resumable:
                # A stage that cannot resume has nothing to gain from an interrupted run's leftovers.
                shutil.rmtree(work)
            else:
                raise ArtifactError(
                    f"{work}: an interrupted run left this partial artifact; pass --resume (same command) to "
                    "continue it or --overwrite to start over"
                )
        if not self.resumed:
            work.mkdir(parents=True)
        self._lock()
        if not self.resumed:
            self.manifest = {
                "kind": self.kind,
                "schema": self.schema,
                "id": None,
                "status": "partial",
                "created": _now(),
                "avkd_version": __version__,
                "versions": package_versions(),
                "command": self.command,
                "config": self.config,
                "inputs": self.inputs,
                "files": {},
                "metrics": {},
            }
            self._write_manifest()

    def _lock(self) -> None:
        """Claim the partial directory: its ``.lock`` names this process and host (see :func:`_refuse_if_locked`)."""
        lock = self.workdir / LOCK
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now(), "command": self.command}
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            _refuse_if_locked(self.workdir)  # raced with another run: it holds the lock now
            lock.unlink(missing_ok=True)
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "w") as handle:
            json.dump(info, handle)
        self._locked = True

    def _unlock(self) -> None:
        if self._locked:
            (self.workdir / LOCK).unlink(missing_ok=True)
            self._locked = False

    def _check_resumable(self, manifest: dict[str, Any]) -> None:
        if manifest.get("kind") != self.kind:
            raise ArtifactError(
                f"{self.workdir}: partial {manifest.get('kind')!r} artifact, cannot resume as {self.kind!r}"
            )
        if manifest.get("config") != self.config:
            diff = _first_difference(manifest.get("config"), self.config)
            raise ArtifactError(
                f"{self.workdir}: config differs from the interrupted run ({diff}); "
                "resume with the same config or pass --overwrite"
            )
        if [i.get("id") for i in manifest.get("inputs", [])] != [i["id"] for i in self.inputs]:
            raise ArtifactError(f"{self.workdir}: inputs differ from the interrupted run; pass --overwrite")

    def __exit__(self, exc_type, exc, tb) -> None:
        # On failure the partial directory stays (its manifest says "partial", nothing looks complete) for
        # --resume, unless this run created it and wrote nothing into it: then nothing is lost by removing it.
        self._unlock()
        if exc_type is not None and self.workdir.exists() and not self.resumed:
            payload = [f for f in self.workdir.rglob("*") if f.is_file() and f.name not in (MANIFEST, LOCK)]
            if not payload:
                shutil.rmtree(self.workdir, ignore_errors=True)
        return None

    def path(self, name: str) -> Path:
        target = self.workdir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def add_file(self, name: str, sha256: str | None = None) -> None:
        """Record a finished payload file (hashing it now, once) and persist the partial manifest."""
        self.manifest["files"][name] = file_record(self.workdir / name, sha256)
        self._write_manifest()

    def update(self, **fields: Any) -> None:
        """Save extra manifest fields while the run is partial (e.g. progress counters)."""
        self.manifest.update(fields)
        self._write_manifest()

    def _write_manifest(self) -> None:
        atomic_write_json(self.workdir / MANIFEST, self.manifest)

    def commit(self, metrics: dict[str, Any] | None = None, **extra: Any) -> Artifact:
        """Hash the remaining payload, write the complete manifest, rename ``<out>.partial`` onto ``<out>``."""
        files = self.manifest["files"]
        present = set()
        for file in sorted(self.workdir.rglob("*")):
            if not file.is_file() or file.name in (MANIFEST, LOCK):
                continue
            name = file.relative_to(self.workdir).as_posix()
            present.add(name)
            size = file.stat().st_size
            known = files.get(name)
            if known is None or known["size"] != size:
                files[name] = file_record(file)
            elif size >= SAMPLE_THRESHOLD and "sample" not in known:
                known["sample"] = sample_digest(file, size)
        for name in set(files) - present:
            del files[name]
        for name, info in files.items():
            if name in self.logs:
                info["log"] = True
        self.manifest["files"] = dict(sorted(files.items()))
        if metrics is not None:
            self.manifest["metrics"] = metrics
        self.manifest.update(extra)
        self.manifest["status"] = "complete"
        self.manifest["completed"] = _now()
        self.manifest["id"] = content_id(
            self.kind, self.schema, self.config, [i["id"] for i in self.inputs], self.manifest["files"]
        )
        self._write_manifest()
        self._unlock()
        if self.out.exists():  # --overwrite: move the old one aside first so a crash here loses neither
            trash = self.out.with_name(f".{self.out.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(self.out, trash)
            os.replace(self.workdir, self.out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(self.workdir, self.out)
        _fsync_dir(self.out.parent)
        return Artifact(path=self.out, manifest=self.manifest)


def _refuse_if_locked(work: Path) -> None:
    """Raise if a live run holds ``work``'s lock; remove a stale lock (its process is gone)."""
    lock = work / LOCK
    try:
        info = json.loads(lock.read_text())
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        info = {}
    pid, host = info.get("pid"), info.get("host")
    if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
        lock.unlink(missing_ok=True)
        return
    if host == socket.gethostname() or not host:
        raise ArtifactError(
            f"{work}: another run (pid {pid} on {host}, since {info.get('started')}) is writing this artifact; wait "
            "for it to finish or stop it first"
        )
    raise ArtifactError(
        f"{work}: a run on host {host} (pid {pid}, since {info.get('started')}) is writing this artifact; if that "
        f"run is gone, delete {lock}"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _first_difference(a: Any, b: Any, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
    return f"{prefix.rstrip('.') or 'config'}: {a!r} then, {b!r} now"


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
