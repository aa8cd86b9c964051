"""Verify on read: an artifact whose payload or manifest changed after it was written is refused with one line,
``avkd artifacts verify`` lists every problem, and the writer's lock and cleanup rules hold."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from avkd.cli.main import main
from avkd.core.artifacts import (
    LOCK,
    MANIFEST,
    SAMPLE_THRESHOLD,
    ArtifactWriter,
    load_artifact,
    register_kind,
    verify_artifact,
)
from avkd.core.errors import ArtifactError

register_kind("verify-test", 1)


def make(tmp_path: Path, name: str = "art", payload: bytes = b"hello\n", big: bytes | None = None) -> Path:
    with ArtifactWriter(tmp_path / name, "verify-test", {"x": 1}) as writer:
        writer.path("payload.txt").write_bytes(payload)
        if big is not None:
            writer.path("big.bin").write_bytes(big)
        writer.commit(metrics={"n": 1})
    return tmp_path / name


def edit_manifest(path: Path, change) -> None:
    manifest = json.loads((path / MANIFEST).read_text())
    change(manifest)
    (path / MANIFEST).write_text(json.dumps(manifest))


def test_an_intact_artifact_verifies(tmp_path: Path) -> None:
    art = load_artifact(make(tmp_path))
    assert verify_artifact(art) == [] and verify_artifact(art, full=True) == []


def test_a_changed_payload_file_is_refused(tmp_path: Path) -> None:
    path = make(tmp_path)
    (path / "payload.txt").write_bytes(b"HELLO\n")  # same size, other bytes
    with pytest.raises(ArtifactError, match=r"payload\.txt: contents differ from the manifest's sha256"):
        load_artifact(path)
    (path / "payload.txt").write_bytes(b"hi\n")
    with pytest.raises(ArtifactError, match=r"payload\.txt: 3 bytes, the manifest says 6"):
        load_artifact(path)
    (path / "payload.txt").unlink()
    with pytest.raises(ArtifactError, match=r"payload\.txt: listed in the manifest but missing"):
        load_artifact(path)


def test_an_edited_manifest_is_refused(tmp_path: Path) -> None:
    # A wrong sha256 written into the manifest, or an edited config: the id no longer matches the contents.
    path = make(tmp_path, "a")
    edit_manifest(path, lambda m: m["files"]["payload.txt"].update(sha256="0" * 64))
    problems = verify_artifact(load_artifact(path, verify=False))
    assert any("contents differ" in p for p in problems) and any(
        "the manifest was edited" in p for p in problems
    )
    path = make(tmp_path, "b")
    edit_manifest(path, lambda m: m["config"].update(x=2))
    with pytest.raises(ArtifactError, match=r"id \w+ does not match its contents"):
        load_artifact(path)


def test_large_files_are_checked_by_sampled_blocks(tmp_path: Path) -> None:
    size = SAMPLE_THRESHOLD + 4096
    path = make(tmp_path, big=bytes(size))
    assert "sample" in load_artifact(path).files["big.bin"]
    data = bytearray((path / "big.bin").read_bytes())
    data[size // 2] = 1  # inside the middle sampled block: the fast check sees it
    (path / "big.bin").write_bytes(bytes(data))
    with pytest.raises(
        ArtifactError, match=r"big\.bin: contents differ from the manifest \(sampled blocks\)"
    ):
        load_artifact(path)
    data[size // 2] = 0
    data[size // 4] = 1  # between the sampled blocks: only the full check sees it
    (path / "big.bin").write_bytes(bytes(data))
    art = load_artifact(path)
    assert verify_artifact(art) == []
    assert verify_artifact(art, full=True) == [
        f"{path / 'big.bin'}: contents differ from the manifest's sha256"
    ]


def test_artifacts_verify_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = make(tmp_path, "good"), make(tmp_path, "bad")
    (bad / "payload.txt").write_bytes(b"HELLO\n")
    (bad / "stray.txt").write_text("x")
    assert main(["artifacts", "verify", str(good)]) == 0
    capsys.readouterr()
    assert main(["artifacts", "verify", str(good), str(bad), "--full", "--json"]) == 1
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["ok"] is False and result["artifacts"][0]["problems"] == []
    assert [p.split(": ", 1)[1] for p in result["artifacts"][1]["problems"]] == [
        "contents differ from the manifest's sha256",
        "not listed in the manifest",
    ]
    assert captured.err.count("error: ") == 2
    assert main(["artifacts", "show", str(bad)]) == 0
    assert "[corrupt: " in capsys.readouterr().out


def test_a_live_run_holds_the_partial_directory(tmp_path: Path) -> None:
    out = tmp_path / "art"
    with ArtifactWriter(out, "verify-test", {"x": 1}):
        lock = json.loads((Path(f"{out}.partial") / LOCK).read_text())
        assert lock["pid"] == os.getpid()
        for resume, overwrite in ((True, False), (False, True)):
            with pytest.raises(ArtifactError, match=rf"another run \(pid {os.getpid()} on "):
                ArtifactWriter(out, "verify-test", {"x": 1}, resume=resume, overwrite=overwrite).__enter__()
    assert not (Path(f"{out}.partial") / LOCK).exists()  # released when the run ends


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    out = tmp_path / "art"
    partial = Path(f"{out}.partial")
    with pytest.raises(RuntimeError), ArtifactWriter(out, "verify-test", {"x": 1}) as writer:
        writer.path("half.bin").write_bytes(b"x")  # some work: the partial directory is kept for --resume
        raise RuntimeError("killed")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (partial / LOCK).write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    with ArtifactWriter(out, "verify-test", {"x": 1}, resume=True) as writer:
        assert writer.resumed
        writer.commit()
    assert load_artifact(out).files == {"half.bin": load_artifact(out).files["half.bin"]}


def test_leftovers_and_advice(tmp_path: Path) -> None:
    out = tmp_path / "art"
    # A run that fails before writing anything leaves nothing behind.
    with pytest.raises(ValueError), ArtifactWriter(out, "verify-test", {"x": 1}):
        raise ValueError("a usage mistake found late")
    assert not Path(f"{out}.partial").exists()
    # One that wrote something keeps it, and the next run is told which option continues it.
    with pytest.raises(ValueError), ArtifactWriter(out, "verify-test", {"x": 1}) as writer:
        writer.path("half.bin").write_bytes(b"x")
        raise ValueError("killed")
    with pytest.raises(ArtifactError, match="pass --resume"):
        ArtifactWriter(out, "verify-test", {"x": 1}).__enter__()
    # A stage that cannot resume (evaluate, report) starts over instead of asking for a flag it lacks.
    with ArtifactWriter(out, "verify-test", {"x": 1}, resumable=False) as writer:
        assert not writer.resumed and not (writer.workdir / "half.bin").exists()
        writer.commit()
    shutil.rmtree(out)


def test_an_unwritable_out_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ArtifactError, match=r"cannot write the artifact"):
        ArtifactWriter(blocker / "art", "verify-test", {"x": 1}).__enter__()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(schema="1"), "'schema' is '1', expected int"),
        (lambda m: m.update(status=None), "'status' is None, expected str"),
        (lambda m: m.update(files=[]), "'files' is not a JSON object"),
    ],
)
def test_manifest_fields_of_the_wrong_type(change, message: str, tmp_path: Path) -> None:
    path = make(tmp_path)
    edit_manifest(path, change)
    with pytest.raises(ArtifactError, match=message):
        load_artifact(path)
