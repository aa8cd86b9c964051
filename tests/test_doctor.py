"""``avkd doctor``: every check passes here, and each failure path names the package and what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from avkd import doctor
from avkd.cli.main import main


def test_every_check_passes_on_this_machine(tmp_path: Path) -> None:
    report = doctor.run_doctor(tmp_path)
    names = [c.name for c in report.checks]
    assert names == [
        "python", "avkd", "torch", "torchaudio", "pyav", "decord", "opencv", "h5py", "filesystem", "threads",
    ]  # fmt: skip
    assert report.ok, report.lines()
    by_name = {c.name: c for c in report.checks}
    assert by_name["torch"].details["version"].startswith(doctor.PINNED_TORCH)
    assert by_name["torchaudio"].details["version"].startswith(doctor.PINNED_TORCH)
    assert "libx264 and aac" in by_name["pyav"].summary
    assert by_name["threads"].details["torch_threads"] >= 1
    assert list(tmp_path.iterdir()) == []  # the probes clean up after themselves


def test_cli_json_and_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--out", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True
    assert {c["name"]: c["status"] for c in data["checks"]}["torchaudio"] == "ok"


@pytest.mark.slow  # ~3 s: `python -m avkd doctor` in a fresh interpreter that imports torch
def test_a_torchaudio_extension_that_does_not_load(tmp_path: Path) -> None:
    # A torchaudio whose compiled extension fails the way 2.11.1 does beside torch 2.11.0, found first on the path.
    fake = tmp_path / "site" / "torchaudio"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "raise OSError('Could not load this library: /site-packages/torchaudio/lib/libtorchaudio.so')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-m", "avkd", "doctor", "--json", "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    bad = checks["torchaudio"]
    assert bad["status"] == "fail"
    assert "does not load beside torch" in bad["summary"] and "libtorchaudio.so" in bad["summary"]
    assert f"torchaudio=={doctor.PINNED_TORCH}" in bad["fix"]
    assert [c for c, v in checks.items() if v["status"] == "fail"] == ["torchaudio"]  # the rest still checked
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: torchaudio: ")
    assert "Traceback" not in result.stderr


def test_a_directory_rename_that_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def cross_device(src, dst) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(doctor.os, "replace", cross_device)
    check = doctor.check_atomic_rename(tmp_path)
    assert check.status == "fail"
    assert "Invalid cross-device link" in check.summary and "--out" in check.fix
    assert list(tmp_path.iterdir()) == []


def test_network_file_system_advice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "_filesystem_type", lambda path: "lustre")
    monkeypatch.delenv("HDF5_USE_FILE_LOCKING", raising=False)
    check = doctor.check_hdf5(tmp_path)
    assert check.status == "warn" and "HDF5_USE_FILE_LOCKING=FALSE" in check.fix
    monkeypatch.setenv("HDF5_USE_FILE_LOCKING", "FALSE")
    assert doctor.check_hdf5(tmp_path).status == "ok"


def test_oversubscribed_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "4")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 64)
    check = doctor.check_threads()
    assert check.status == "warn" and "OMP_NUM_THREADS=4" in check.fix


def test_a_crashing_check_is_that_item_failing() -> None:
    def broken() -> doctor.Check:
        raise RuntimeError("boom\nsecond line")

    check = doctor._guarded("x", broken)
    assert (check.status, check.summary) == ("fail", "check crashed: RuntimeError: boom")


def test_filesystem_type_of_the_root() -> None:
    if not Path("/proc/self/mounts").exists():
        pytest.skip("no /proc/self/mounts on this system")
    assert doctor._filesystem_type(Path("/")) not in (None, "")
