"""The command line: exit codes, one-line errors, --json on stdout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from avkd.cli.main import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def count(root: Path, *splits: str) -> int:
    return sum(len((root / f"{s}.txt").read_text().split("\n")) - 1 for s in splits)


def test_version_and_help(capsys) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("avkd ")
    code, out, _ = run(capsys, "preprocess", "lrs2", "--help")
    assert code == 0 and "--shard" in out and "--resume" in out


def test_preprocess_json_show_and_refusals(synth_corpus: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "feats"
    code, stdout, _ = run(
        capsys, "preprocess", "lrs2", str(synth_corpus), "--out", str(out), "--splits", "val,test", "--json"
    )
    assert code == 0
    result = json.loads(stdout)
    assert (
        result["metrics"]["utterances"] == count(synth_corpus, "val", "test")
        and result["metrics"]["failures"] == 0
    )
    code, _, err = run(
        capsys, "preprocess", "lrs2", str(synth_corpus), "--out", str(out), "--splits", "val,test"
    )
    assert (
        code == 1
        and err.strip() == f"error: {out}: a complete artifact already exists; pass --overwrite to replace it"
    )
    code, stdout, _ = run(capsys, "artifacts", "show", str(out), "--json")
    shown = json.loads(stdout)
    assert code == 0 and shown["manifest"]["id"] == result["id"]
    assert shown["manifest"]["config"]["splits"] == ["val", "test"]
    assert shown["manifest"]["command"][:3] == ["avkd", "preprocess", "lrs2"]
    code, stdout, _ = run(capsys, "artifacts", "show", str(out))
    assert code == 0 and "lrs2-features" in stdout and result["id"] in stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--set", "detector.nme=haar"], 2, "config key 'detector.nme' is unknown"),
        (["--set", "part_size=big"], 2, "config key 'part_size': expected an integer"),
        (["--shard", "4/4"], 2, "need 0 <= INDEX < COUNT"),
        (["--detector", "s3fd"], 2, "'s3fd' is not one of"),
        (["--decoder", "ffmpeg7"], 2, "ffmpeg7"),
        (["--detector", "boxes"], 2, "needs a boxes file"),
    ],
)
def test_bad_usage_exits_2_with_one_line(
    synth_corpus: Path, tmp_path: Path, capsys, args, code, message
) -> None:
    got, _, err = run(capsys, "preprocess", "lrs2", str(synth_corpus), "--out", str(tmp_path / "o"), *args)
    assert got == code
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_failure_share_sets_the_exit_code(synth_corpus: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "c"
    shutil.copytree(synth_corpus, root)
    victim = next((root / "main").rglob("*.mp4"))
    victim.write_bytes(b"garbage")
    code, _, err = run(
        capsys, "preprocess", "lrs2", str(root), "--out", str(tmp_path / "a"), "--splits", "train,val,test"
    )
    total = count(root, "train", "val", "test")
    assert code == 1 and f"1 of {total} utterances failed ({100 / total:.1f}% > 1%)" in err
    assert (tmp_path / "a" / "avkd.json").exists()  # the work is kept
    code, _, _ = run(
        capsys,
        "preprocess",
        "lrs2",
        str(root),
        "--out",
        str(tmp_path / "b"),
        "--splits",
        "train,val,test",
        "--max-failures",
        "0.25",
    )
    assert code == 0


def test_wrong_kind_is_one_line_exit_1(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "artifacts", "show", str(tmp_path / "nothing"))
    assert code == 1 and err.strip() == f"error: {tmp_path / 'nothing'}: no such artifact"


def test_data_check_cli(synth_corpus: Path, capsys) -> None:
    code, stdout, err = run(
        capsys,
        "data",
        "check",
        "lrs2",
        str(synth_corpus),
        "--manifest",
        str(synth_corpus / "lrs2.yaml"),
        "--json",
    )
    assert code == 0 and json.loads(stdout)["ok"] is True
    code, _, err = run(capsys, "data", "check", "lrs2", str(synth_corpus), "--no-probe")
    assert code == 1 and "1243" in err


def test_shard_and_merge_cli(synth_corpus: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    out = tmp_path / "f"
    for task in (1, 2):  # a Slurm array 1-2
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", str(task))
        monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")
        monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
        code, _, _ = run(
            capsys, "preprocess", "lrs2", str(synth_corpus), "--out", str(out), "--splits", "val,test"
        )
        assert code == 0
    assert (tmp_path / "f.shard-0000-of-0002").exists() and (tmp_path / "f.shard-0001-of-0002").exists()
    code, stdout, _ = run(capsys, "preprocess", "merge", "--out", str(out), "--json")
    assert code == 0 and json.loads(stdout)["metrics"]["utterances"] == count(synth_corpus, "val", "test")


@pytest.mark.parametrize("frames", ["4..8", "5..4", "6", "5..15:0", "a"])
def test_evaluate_bad_frames_exit_2(frames: str, tmp_path: Path, capsys) -> None:
    code, _, err = run(
        capsys, "evaluate", "--model", "m", "--data", "d", "--out", str(tmp_path / "e"), "--frames", frames
    )
    assert code == 2 and err.startswith(f"error: --frames {frames!r}") and err.count("\n") == 1


def test_mosei_synth_and_ingest_cli(tmp_path: Path, capsys) -> None:
    csd, pkl = tmp_path / "csd", tmp_path / "mosei_senti_data.pkl"
    code, _, _ = run(capsys, "data", "synth", "mosei", str(csd), "--pickle", str(pkl), "--seed", "3")
    assert code == 0 and pkl.is_file()
    code, stdout, _ = run(capsys, "preprocess", "mosei", str(pkl), "--out", str(tmp_path / "a"), "--json")
    from_pickle = json.loads(stdout)["metrics"]
    code2, stdout, _ = run(capsys, "preprocess", "mosei", str(csd), "--out", str(tmp_path / "b"), "--json")
    from_csd = json.loads(stdout)["metrics"]
    assert code == code2 == 0
    assert from_pickle["per_split"] == from_csd["per_split"] and from_csd["failures"] >= 1
    code, _, err = run(capsys, "preprocess", "mosei", str(tmp_path / "nothing"), "--out", str(tmp_path / "c"))
    assert code != 0 and err.startswith("error: ") and err.count("\n") == 1
    # Too many failed segments: exit 1 with the count, and the artifact is kept (its failures list names them).
    args = ("preprocess", "mosei", str(csd), "--out", str(tmp_path / "d"), "--max-failures", "0.001")
    code, _, err = run(capsys, *args)
    failed = from_csd["failures"]
    total = sum(from_csd["per_split"].values()) + failed
    assert code == 1 and f"error: {tmp_path / 'd'}: {failed} of {total} segments failed" in err
    assert "failed: train/" in err and (tmp_path / "d" / "failures.jsonl").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "mosei", "--utterances", "5"], "--utterances does not apply to demo in the emotion task"),
        (["--task", "speech"], "unknown task 'speech'; known: avsiam, emotion, sync"),
    ],
)
def test_demo_bad_task_options_exit_2(args: list[str], message: str, tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "demo", "--out", str(tmp_path / "d"), *args)
    assert code == 2 and err.startswith(f"error: {message}")
    assert err.count("\n") == 1 and not (tmp_path / "d").exists()
