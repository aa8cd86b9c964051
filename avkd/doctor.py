"""``avkd doctor``: check that everything avkd depends on loads and works on this machine.

The command a user runs first on a new GPU box or cluster node. Each check imports its package and makes it do
real work (a matrix product under autocast, a resample, an mp4 written and decoded with each decoder, a Haar
cascade run, an HDF5 file written into the output folder, a directory renamed the way artifacts are committed),
because "importable" is not "works": torchaudio 2.11.1 imports its Python part fine and then fails to load its
compiled extension beside torch 2.11.0.

Packages are imported inside their checks on purpose: a package that fails to load must not stop the doctor
from reporting on the others, and a broken torch must not stop ``avkd doctor`` from starting at all.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

__all__ = ["Check", "DoctorReport", "run_doctor"]

Status = Literal["ok", "warn", "fail"]

#: The torch / torchaudio pair avkd pins (pyproject.toml): the only pair a fresh install can resolve to.
PINNED_TORCH = "2.11.0"

#: File systems on which HDF5's file locking is known to fail or hang (then HDF5_USE_FILE_LOCKING=FALSE).
NETWORK_FILESYSTEMS = (
    "nfs",
    "nfs4",
    "lustre",
    "gpfs",
    "beegfs",
    "cifs",
    "smb3",
    "fuse.sshfs",
    "ceph",
    "wekafs",
)


@dataclass
class Check:
    """One item of the report: what was found, whether it works, and what to do when it does not."""

    name: str
    status: Status
    summary: str
    fix: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == "fail"


@dataclass
class DoctorReport:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return not any(c.failed for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.failed]

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}

    def lines(self) -> list[str]:
        """The human-readable report, one block per check."""
        width = max(len(c.name) for c in self.checks)
        out = []
        for c in self.checks:
            out.append(f"{c.status.upper():<4}  {c.name:<{width}}  {c.summary}")
            if c.fix and c.status != "ok":
                out.append(f"{'':<4}  {'':<{width}}  -> {c.fix}")
        return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _base(version: str) -> str:
    """``2.11.0+cu128`` -> ``2.11.0``."""
    return version.split("+", 1)[0]


# ----------------------------------------------------------------------------------------------- the checks


def check_python() -> Check:
    version = platform.python_version()  # pip already refused an older one (requires-python)
    return Check("python", "ok", f"{version} ({sys.executable})", details={"version": version})


def check_avkd() -> Check:
    import avkd
    from avkd.data.manifests import manifest_dir

    where = Path(avkd.__file__).resolve().parent
    manifests = manifest_dir()
    return Check(
        "avkd",
        "ok",
        f"{avkd.__version__} at {where} (split manifests in {manifests})",
        details={"version": avkd.__version__, "path": str(where), "data_manifests": str(manifests)},
    )


def check_torch() -> Check:
    try:
        import torch
    except Exception as exc:
        return Check(
            "torch",
            "fail",
            f"does not import: {_first_line(exc)}",
            f"pip install 'torch=={PINNED_TORCH}' (or the {PINNED_TORCH} build for your CUDA from PyTorch's index)",
        )
    a = torch.randn(64, 64)
    if not torch.isfinite(a @ a).all():
        return Check("torch", "fail", "a CPU matrix product gave non-finite values", "reinstall torch")
    details: dict[str, Any] = {
        "version": torch.__version__,
        "cuda_build": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "devices": [],
    }
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
    if details["cudnn"]:
        build += f", cuDNN {details['cudnn']}"
    status: Status = "ok"
    fix = None
    if _base(torch.__version__) != PINNED_TORCH:
        status = "warn"
        fix = f"avkd is tested with torch {PINNED_TORCH}: pip install 'torch=={PINNED_TORCH}' 'torchaudio=={PINNED_TORCH}'"
    if not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        where = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
        return Check(
            "torch",
            status,
            f"{torch.__version__}, {build}; no CUDA device visible{where}: training runs on the CPU, without AMP",
            fix,
            details,
        )
    devices = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        devices.append(
            {
                "index": index,
                "name": props.name,
                "memory_gib": round(props.total_memory / 2**30, 1),
                "capability": f"{props.major}.{props.minor}",
                **_amp_support(torch, index),
            }
        )
    details["devices"] = devices
    names = "; ".join(
        f"cuda:{d['index']} {d['name']} {d['memory_gib']} GiB, AMP bf16 {'yes' if d['bf16'] else 'no'} "
        f"fp16 {'yes' if d['fp16'] else 'no'}"
        for d in devices
    )
    if not any(d["bf16"] or d["fp16"] for d in devices):
        status = "warn"
        fix = "mixed precision failed on every device: train with --set loop.amp=false"
    return Check("torch", status, f"{torch.__version__}, {build}; {names}", fix, details)


def _amp_support(torch: Any, index: int) -> dict[str, bool]:
    """Whether a matrix product under autocast runs and stays finite, per AMP dtype, on ``cuda:index``."""
    result = {}
    device = torch.device("cuda", index)
    for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        try:
            a = torch.randn(128, 128, device=device)
            with torch.autocast("cuda", dtype=dtype):
                product = a @ a
            torch.cuda.synchronize(device)
            result[name] = bool(product.dtype == dtype and torch.isfinite(product).all())
        except Exception:  # an unsupported dtype raises on old GPUs
            result[name] = False
    if result["bf16"] and not torch.cuda.is_bf16_supported():
        result["bf16"] = False  # emulated bf16 works but is slow; avkd's loop then chooses fp16
    return result


def check_torchaudio() -> Check:
    version = _version("torchaudio")
    torch_version = _version("torch")
    pair = f"pip install 'torch=={PINNED_TORCH}' 'torchaudio=={PINNED_TORCH}'"
    if version is None:
        return Check("torchaudio", "fail", "not installed", pair)
    try:
        import torchaudio.functional as AF  # loads the compiled extension (libtorchaudio.so)
    except Exception as exc:
        return Check(
            "torchaudio",
            "fail",
            f"{version} does not load beside torch {torch_version}: {_first_line(exc)}",
            f"torchaudio's compiled extension only loads beside the torch it was built for: {pair}",
            {"version": version, "torch": torch_version},
        )
    import torch

    from avkd.media.audio import vocalist_mel

    wave = torch.sin(torch.linspace(0, 2000, 44100))
    resampled = AF.resample(wave, 44100, 16000)
    mel = vocalist_mel(resampled.numpy())
    if resampled.shape[-1] != 16000 or mel.shape != (80, 81):
        return Check(
            "torchaudio", "fail", f"{version}: resample or the mel front-end gave wrong shapes", pair
        )
    return Check(
        "torchaudio",
        "ok",
        f"{version}: compiled extension loads; resample 44.1 -> 16 kHz and the 80-band mel work",
        details={"version": version, "torch": torch_version},
    )


@contextlib.contextmanager
def _tiny_clip() -> Iterator[Path]:
    """A 10-frame 64x64 H.264/AAC mp4 with a tone, written with avkd's own writer."""
    import numpy as np

    from avkd.media.encode import write_mp4

    with tempfile.TemporaryDirectory(prefix="avkd-doctor-") as tmp:
        path = Path(tmp) / "clip.mp4"
        t = np.arange(6400) / 16000
        frames = np.zeros((10, 64, 64, 3), np.uint8)
        frames[:, 16:48, 16:48] = np.arange(10, dtype=np.uint8)[:, None, None, None] * 20
        write_mp4(path, frames, 25.0, audio=0.3 * np.sin(2 * np.pi * 440 * t), sample_rate=16000)
        yield path


def _decodes(decoder: str, path: Path) -> str:
    from avkd.media.video import decode

    media = decode(path, decoder=decoder)
    if media.n_frames != 10 or media.audio is None or media.sample_rate != 16000:
        raise RuntimeError(
            f"decoded {media.n_frames} frames at {media.sample_rate} Hz, expected 10 frames at 16000 Hz"
        )
    return f"{media.n_frames} frames, {media.audio.shape[-1]} audio samples"


def check_pyav() -> Check:
    version = _version("av")
    try:
        import av
    except Exception as exc:
        return Check("pyav", "fail", f"does not import: {_first_line(exc)}", "pip install 'av>=12,<19'")
    missing = []
    for codec in ("libx264", "aac"):
        try:
            av.codec.Codec(codec, "w")
        except Exception:
            missing.append(codec)
    if missing:
        return Check(
            "pyav",
            "fail",
            f"{version}: FFmpeg lacks the {' and '.join(missing)} encoder(s) the synthetic corpora write",
            "install the PyAV wheel from PyPI (it bundles FFmpeg with libx264 and AAC): pip install --force-reinstall av",
        )
    ffmpeg = ".".join(map(str, av.library_versions.get("libavcodec", ()))) or "?"
    with _tiny_clip() as clip:
        try:
            decoded = _decodes("pyav", clip)
        except Exception as exc:
            return Check(
                "pyav", "fail", f"{version}: cannot decode a clip it wrote: {_first_line(exc)}", None
            )
    return Check(
        "pyav",
        "ok",
        f"{version} (libavcodec {ffmpeg}): encoders libx264 and aac present; wrote and decoded a clip ({decoded})",
        details={"version": version, "libavcodec": ffmpeg},
    )


def check_decord() -> Check:
    version = _version("decord")
    if version is None:
        return Check(
            "decord",
            "warn",
            "not installed (optional; x86-64 only): PyAV decodes instead",
            "nothing to do, or pip install decord==0.6.0 on x86-64 for the faster decoder",
        )
    try:
        import decord  # noqa: F401
    except Exception as exc:
        return Check(
            "decord",
            "fail",
            f"{version} is installed but does not load: {_first_line(exc)}",
            "pip uninstall decord (PyAV then decodes), or reinstall decord==0.6.0",
        )
    with _tiny_clip() as clip:
        try:
            decoded = _decodes("decord", clip)
        except Exception as exc:
            return Check(
                "decord",
                "fail",
                f"{version}: cannot decode a clip PyAV wrote: {_first_line(exc)}",
                "use --decoder pyav, or pip uninstall decord",
            )
    return Check("decord", "ok", f"{version}: decoded a clip ({decoded})", details={"version": version})


def check_opencv() -> Check:
    try:
        import cv2
        import numpy as np
    except Exception as exc:
        return Check(
            "opencv",
            "fail",
            f"does not import: {_first_line(exc)}",
            "pip install 'opencv-python-headless>=4.8,<5'",
        )
    from avkd.core.errors import AvkdError
    from avkd.media.faces import _default_cascade_path, _load_cascade

    path = _default_cascade_path()
    try:
        cascade = _load_cascade(None)
        cascade.detectMultiScale(np.zeros((96, 96), np.uint8))
    except AvkdError as exc:
        return Check(
            "opencv",
            "fail",
            f"{cv2.__version__}: {exc}",
            "pip install 'opencv-python-headless>=4.8,<5', or use the fixed or boxes detector",
        )
    return Check(
        "opencv",
        "ok",
        f"{cv2.__version__}: Haar cascade {path} loads and runs",
        details={"version": cv2.__version__, "cascade": path},
    )


def _filesystem_type(path: Path) -> str | None:
    """The type of the file system holding ``path`` (Linux /proc/self/mounts; None elsewhere)."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    best, kind = "", None
    target = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, parts[2]
    return kind


def _unusable(name: str, folder: Path) -> Check | None:
    """A failing check when ``folder`` cannot be created or written to (None when it can)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".avkd-doctor-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return Check(
            name,
            "fail",
            f"cannot write into {folder}: {exc.strerror or _first_line(exc)}",
            "choose another --out",
        )
    return None


def check_hdf5(folder: Path) -> Check:
    if (bad := _unusable("h5py", folder)) is not None:
        return bad
    try:
        import h5py
        import numpy as np
    except Exception as exc:
        return Check("h5py", "fail", f"does not import: {_first_line(exc)}", "pip install 'h5py>=3.10,<4'")
    locking = os.environ.get("HDF5_USE_FILE_LOCKING")
    fs = _filesystem_type(folder)
    details = {
        "version": h5py.version.version,
        "hdf5": h5py.version.hdf5_version,
        "HDF5_USE_FILE_LOCKING": locking,
        "filesystem": fs,
    }
    where = f"{folder} ({fs or 'unknown file system'})"
    name = f".avkd-doctor-{uuid.uuid4().hex[:8]}.h5"
    target = folder / name
    try:
        with h5py.File(target, "w") as handle:
            handle.create_dataset("x", data=np.arange(10), chunks=(5,), compression="lzf")
        with h5py.File(target, "r") as handle:
            if handle["x"][7] != 7:
                raise OSError("read back a wrong value")
    except OSError as exc:
        return Check(
            "h5py",
            "fail",
            f"{h5py.version.version} (HDF5 {h5py.version.hdf5_version}) cannot write and read back a file in "
            f"{where}: {_first_line(exc)}",
            "on NFS, Lustre or GPFS: export HDF5_USE_FILE_LOCKING=FALSE",
            details,
        )
    finally:
        target.unlink(missing_ok=True)
    summary = (
        f"{h5py.version.version} (HDF5 {h5py.version.hdf5_version}), HDF5_USE_FILE_LOCKING="
        f"{locking if locking is not None else 'unset'}; wrote and read a file in {where}"
    )
    if fs in NETWORK_FILESYSTEMS and (locking or "").upper() != "FALSE":
        return Check(
            "h5py",
            "warn",
            summary,
            f"{fs} is a network file system, where HDF5's locks can fail or hang under many readers: "
            "export HDF5_USE_FILE_LOCKING=FALSE",
            details,
        )
    return Check("h5py", "ok", summary, details=details)


def check_atomic_rename(folder: Path) -> Check:
    """Artifacts are built in ``OUT.partial`` and renamed onto ``OUT`` (and moved aside on --overwrite)."""
    if (bad := _unusable("filesystem", folder)) is not None:
        return bad
    fs = _filesystem_type(folder)
    base = folder / f".avkd-doctor-{uuid.uuid4().hex[:8]}"
    partial, final, old = (Path(f"{base}{s}") for s in (".partial", "", ".old"))
    try:
        partial.mkdir()
        (partial / "avkd.json").write_text("{}\n")
        os.replace(partial, final)  # commit
        partial.mkdir()
        (partial / "avkd.json").write_text("{}\n")
        os.replace(final, old)  # --overwrite: the old artifact aside,
        os.replace(partial, final)  # the new one into place
        if not (final / "avkd.json").is_file() or partial.exists():
            raise OSError("a renamed directory is not where it should be")
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return Check(
            "filesystem",
            "fail",
            f"{folder} ({fs or 'unknown file system'}): renaming a directory failed: {_first_line(exc)}",
            "write artifacts to a local or POSIX file system (--out on scratch, not an object-store mount)",
        )
    finally:
        for path in (partial, final, old):
            shutil.rmtree(path, ignore_errors=True)
    return Check(
        "filesystem",
        "ok",
        f"{folder} ({fs or 'unknown file system'}): atomic directory rename works; {free / 2**30:.0f} GiB free",
        details={"folder": str(folder), "filesystem": fs, "free_bytes": free},
    )


def check_threads() -> Check:
    try:
        import torch
    except Exception:
        return Check("threads", "fail", "torch does not import", "see the torch line above")
    cpus = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    env = {
        k: os.environ[k]
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "SLURM_CPUS_PER_TASK")
        if k in os.environ
    }
    threads = torch.get_num_threads()
    details = {
        "torch_threads": threads,
        "interop_threads": torch.get_num_interop_threads(),
        "cpus": cpus,
        "usable_cpus": usable,
        **env,
    }
    summary = (
        f"torch uses {threads} intra-op threads ({torch.get_num_interop_threads()} inter-op) on {usable} "
        f"usable of {cpus} CPUs" + (f"; {', '.join(f'{k}={v}' for k, v in env.items())}" if env else "")
    )
    slurm = env.get("SLURM_CPUS_PER_TASK")
    if threads > usable or (slurm and slurm.isdigit() and threads > int(slurm)):
        limit = int(slurm) if slurm and slurm.isdigit() else usable
        return Check(
            "threads",
            "warn",
            summary,
            f"more threads than CPUs oversubscribes them: export OMP_NUM_THREADS={limit}",
            details,
        )
    return Check("threads", "ok", summary, details=details)


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """Run one check; an unexpected exception is that item's failure, never the doctor's crash."""
    try:
        return check()
    except Exception as exc:
        return Check(name, "fail", f"check crashed: {type(exc).__name__}: {_first_line(exc)}", None)


def run_doctor(out: str | Path = ".") -> DoctorReport:
    """Run every check; ``out`` is the folder whose file system artifacts will be written to."""
    folder = Path(out).resolve()
    checks: list[tuple[str, Callable[[], Check]]] = [
        ("python", check_python),
        ("avkd", check_avkd),
        ("torch", check_torch),
        ("torchaudio", check_torchaudio),
        ("pyav", check_pyav),
        ("decord", check_decord),
        ("opencv", check_opencv),
        ("h5py", lambda: check_hdf5(folder)),
        ("filesystem", lambda: check_atomic_rename(folder)),
        ("threads", check_threads),
    ]
    return DoctorReport([_guarded(name, check) for name, check in checks])
