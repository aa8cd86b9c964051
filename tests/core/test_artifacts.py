import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from avkd.core.artifacts import (
    MANIFEST,
    SCHEMAS,
    ArtifactWriter,
    is_complete,
    lineage,
    load_artifact,
    read_manifest,
    register_kind,
)
from avkd.core.errors import ArtifactError

register_kind("test-thing", 1)


def make(out: Path, payload: str = "hello", **kw) -> None:
    with ArtifactWriter(out, "test-thing", {"a": 1}, **kw) as w:
        w.path("data.txt").write_text(payload)
        w.commit(metrics={"n": 1})


def test_complete_artifact_manifest(tmp_path: Path) -> None:
    out = tmp_path / "art"
    make(out)
    art = load_artifact(out, kind="test-thing")
    assert art.status == "complete" and art.schema == 1
    assert art.files["data.txt"]["size"] == 5
    assert (
        art.files["data.txt"]["sha256"] == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    )
    assert art.config == {"a": 1} and art.metrics == {"n": 1}
    assert len(art.id) == 16
    assert not (tmp_path / "art.partial").exists()
    # Same config, inputs and payload -> same id; a different payload -> a different id.
    make(tmp_path / "twin")
    make(tmp_path / "other", payload="world")
    assert load_artifact(tmp_path / "twin").id == art.id
    assert load_artifact(tmp_path / "other").id != art.id


def test_refuses_overwrite_without_flag(tmp_path: Path) -> None:
    out = tmp_path / "art"
    make(out)
    with pytest.raises(ArtifactError, match="already exists; pass --overwrite"):
        make(out, payload="new")
    assert (out / "data.txt").read_text() == "hello"
    make(out, payload="new", overwrite=True)
    assert (out / "data.txt").read_text() == "new"


def test_refuses_to_write_over_a_foreign_folder(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(ArtifactError, match="not an avkd artifact"):
        make(out, overwrite=True)
    assert (out / "thesis.tex").read_text() == "precious"


def _killed_stage(out: str) -> None:
    with ArtifactWriter(Path(out), "test-thing", {"a": 1}) as w:
        w.path("first.txt").write_text("done")
        w.add_file("first.txt")
        time.sleep(60)  # killed here, halfway
        w.commit()


def test_killed_stage_leaves_nothing_complete_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "art"
    proc = multiprocessing.get_context("spawn").Process(target=_killed_stage, args=(str(out),))
    proc.start()
    partial = tmp_path / "art.partial"
    deadline = time.time() + 60
    while not (partial / "first.txt").exists() or "first.txt" not in read_manifest(partial)["files"]:
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert not out.exists()
    assert not is_complete(out)
    with pytest.raises(ArtifactError, match="only a partial run exists"):
        load_artifact(out)
    assert read_manifest(partial)["status"] == "partial"
    # Without --resume the partial run is protected, with it the work continues.
    with pytest.raises(ArtifactError, match="pass --resume"):
        make(out)
    with ArtifactWriter(out, "test-thing", {"a": 1}, resume=True) as w:
        assert w.resumed
        assert (w.workdir / "first.txt").read_text() == "done"
        w.path("second.txt").write_text("also")
        w.commit()
    art = load_artifact(out)
    assert set(art.files) == {"first.txt", "second.txt"}


def test_resume_with_other_config_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "art"
    with ArtifactWriter(out, "test-thing", {"a": 1}):
        pass  # leaves a partial
    with (
        pytest.raises(ArtifactError, match=r"config differs .*a: 1 then, 2 now"),
        ArtifactWriter(out, "test-thing", {"a": 2}, resume=True),
    ):
        pass


def test_wrong_kind_and_newer_schema(tmp_path: Path) -> None:
    out = tmp_path / "art"
    make(out)
    with pytest.raises(ArtifactError, match="is a 'test-thing' artifact, expected 'lrs2-features'"):
        load_artifact(out, kind="lrs2-features")
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["schema"] = SCHEMAS["test-thing"] + 1
    (out / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="schema 2 is newer"):
        load_artifact(out)
    with pytest.raises(ArtifactError, match="not an avkd artifact"):
        load_artifact(tmp_path)
    with pytest.raises(ArtifactError, match="no such artifact"):
        load_artifact(tmp_path / "nope")


def test_lineage_follows_inputs_and_notices_changes(tmp_path: Path) -> None:
    up = tmp_path / "up"
    make(up)
    upstream = load_artifact(up)
    down = tmp_path / "down"
    with ArtifactWriter(down, "test-thing", {"b": 2}, inputs=[upstream]) as w:
        w.path("x").write_text("x")
        w.commit()
    rows = lineage(load_artifact(down))
    assert [r["depth"] for r in rows] == [0, 1]
    assert rows[1]["id"] == upstream.id and rows[1]["state"] == "ok"
    make(up, payload="changed", overwrite=True)
    rows = lineage(load_artifact(down))
    assert rows[1]["state"].startswith("changed")


def test_log_files_are_kept_but_left_out_of_the_id(tmp_path: Path) -> None:
    def run(out: Path, timing: str, payload: str = "weights") -> None:
        with ArtifactWriter(out, "test-thing", {"a": 1}, logs=["log.jsonl"]) as w:
            w.path("data.txt").write_text(payload)
            w.path("log.jsonl").write_text(timing)
            w.commit()

    run(tmp_path / "fast", '{"seconds": 1.2}\n')
    run(tmp_path / "slow", '{"seconds": 9.7}\n')
    run(tmp_path / "other", '{"seconds": 1.2}\n', payload="other weights")
    fast, slow = load_artifact(tmp_path / "fast"), load_artifact(tmp_path / "slow")
    assert fast.files["log.jsonl"]["log"] is True and "log" not in fast.files["data.txt"]
    assert fast.files["log.jsonl"]["sha256"] != slow.files["log.jsonl"]["sha256"]
    assert fast.id == slow.id != load_artifact(tmp_path / "other").id
