"""Every mistake a user makes is one line ``error: <file>: <reason>`` with the right exit code, no traceback, and
nothing left behind that looks like work: the table of bad invocations that a careless or hostile user tried."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from avkd.cli.main import main
from avkd.core.artifacts import MANIFEST
from avkd.data.mosei.ingest import MoseiIngestConfig, ingest_mosei
from avkd.data.mosei.synthetic import SynthMoseiConfig, synthesize_mosei
from avkd.models.io import ModelSpec, save_weights
from avkd.tasks.sync.config import SyncModelConfig, SyncTrainConfig
from avkd.tasks.sync.train import train_sync_teacher
from avkd.train.loop import LoopConfig

SMALL = SyncModelConfig(name="vocalist_lite", width=16, channels=[4, 4, 8, 8, 16])


@pytest.fixture(scope="module")
def world(features, synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A trained tiny sync model, its features, broken copies of both, and a few bad files."""
    root = tmp_path_factory.mktemp("world")
    model = root / "model"
    config = SyncTrainConfig(
        model=SMALL, loop=LoopConfig(epochs=1, batch_size=8, device="cpu"), samples_per_epoch=8, val_samples=8
    )
    train_sync_teacher(config, features.path, model, show_progress=False)
    files = {"model": model, "features": features.path, "corpus": synth_corpus, "root": root}
    synthesize_mosei(root / "mosei-csd", SynthMoseiConfig())
    ingest_mosei(
        MoseiIngestConfig(text_len=6, audio_len=60, vision_len=60), root / "mosei-csd", root / "mosei"
    )
    files["mosei"] = root / "mosei"

    garbage = root / "garbage.pt"
    garbage.write_bytes(b"this is not a pytorch file" * 10)
    files["garbage"] = garbage
    (root / "empty.pt").write_bytes(b"")
    files["empty"] = root / "empty.pt"
    other = torch.nn.Linear(3, 3)  # an avkd model file whose weights fit another architecture
    save_weights(
        root / "mismatch.pt", other, ModelSpec("vocalist_lite", {"width": 16, "channels": [4, 4, 8, 8, 16]})
    )
    files["mismatch"] = root / "mismatch.pt"

    for name, damage in (("truncated", "truncate"), ("zeroed", "zero"), ("deleted", "delete")):
        copy = root / f"feats-{name}"
        shutil.copytree(features.path, copy)
        part = sorted((copy / "parts").glob("part-*.h5"))[0]
        if damage == "truncate":
            part.write_bytes(part.read_bytes()[:1000])
        elif damage == "zero":
            part.write_bytes(bytes(part.stat().st_size))
        else:
            part.unlink()
        files[f"feats-{name}"] = copy
    no_index = root / "feats-noindex"
    shutil.copytree(features.path, no_index)
    (no_index / "utterances.jsonl").unlink()
    files["feats-noindex"] = no_index

    schema = root / "model-string-schema"
    shutil.copytree(model, schema)
    manifest = json.loads((schema / MANIFEST).read_text())
    manifest["schema"] = "1"
    (schema / MANIFEST).write_text(json.dumps(manifest))
    files["model-string-schema"] = schema
    (root / "a-file").write_text("not a folder\n")
    files["a-file"] = root / "a-file"
    return files


#: (arguments with {placeholders} for the world's files, exit code, text the one error line contains)
BAD = [
    (
        ["train", "teacher", "--data", "{features}", "--out", "{out}", "--epochs", "0"],
        2,
        "--epochs: 0 must be at least 1",
    ),
    (["train", "teacher", "--data", "{features}", "--out", "{out}", "--epochs", "-3"], 2, "--epochs: -3"),
    (
        ["train", "teacher", "--data", "{features}", "--out", "{out}", "--batch-size", "0"],
        2,
        "--batch-size: 0",
    ),
    (
        ["train", "teacher", "--data", "{features}", "--out", "{out}", "--lr", "-1"],
        2,
        "--lr: -1.0 must be more",
    ),
    (
        ["train", "teacher", "--data", "{features}", "--out", "{out}", "--device", "gpu"],
        2,
        "--device: 'gpu' is not a device",
    ),
    (["train", "teacher", "--data", "{features}", "--out", "{out}", "--device", "tpu"], 2, "is not a device"),
    (
        ["train", "teacher", "--data", "{features}", "--out", "{out}", "--width", "0"],
        2,
        "--width: 0 must be at least 1",
    ),
    (
        [
            "train",
            "teacher",
            "--task",
            "emotion",
            "--data",
            "{mosei}",
            "--out",
            "{out}",
            "--branch",
            "nose",
        ],
        2,
        "branch must be one of",
    ),
    (
        ["train", "teacher", "--task", "emotion", "--data", "{features}", "--out", "{out}"],
        1,
        "expected 'mosei-features'",
    ),
    (["train", "teacher", "--data", "{features}", "--out", "{a-file}/x"], 1, "cannot write the artifact"),
    (["train", "teacher", "--data", "{feats-truncated}", "--out", "{out}"], 1, "part-00000.h5"),
    (["train", "teacher", "--data", "{feats-zeroed}", "--out", "{out}"], 1, "part-00000.h5: contents differ"),
    (
        ["train", "teacher", "--data", "{feats-deleted}", "--out", "{out}"],
        1,
        "part-00000.h5: listed in the manifest but missing",
    ),
    (
        ["evaluate", "--model", "{garbage}", "--data", "{features}", "--out", "{out}"],
        1,
        "garbage.pt: not a readable PyTorch weights file",
    ),
    (
        ["evaluate", "--model", "{empty}", "--data", "{features}", "--out", "{out}"],
        1,
        "empty.pt: not a readable PyTorch weights file (empty file)",
    ),
    (["evaluate", "--model", "{mismatch}", "--data", "{features}", "--out", "{out}"], 2, "key(s) missing"),
    (
        ["evaluate", "--model", "{model-string-schema}", "--data", "{features}", "--out", "{out}"],
        1,
        "'schema' is '1', expected int",
    ),
    (
        ["evaluate", "--model", "{model}", "--data", "{features}", "--out", "{out}", "--split", "nosuch"],
        2,
        "no 'nosuch' clips in these features",
    ),
    (
        ["evaluate", "--model", "{model}", "--data", "{feats-noindex}", "--out", "{out}"],
        1,
        "utterances.jsonl: listed in the manifest but missing",
    ),
    (
        ["evaluate", "--model", "{model}", "--data", "{features}", "--out", "{out}", "--limit", "-1"],
        2,
        "--limit: -1 must be at least 1",
    ),
    (
        [
            "evaluate",
            "--model",
            "{model}",
            "--data",
            "{features}",
            "--out",
            "{out}",
            "--frames",
            "5..99999999",
        ],
        2,
        "K goes up to 201",
    ),
    (
        ["evaluate", "--model", "{model}", "--data", "{features}", "--out", "{out}", "--device", "tpu"],
        2,
        "is not a device",
    ),
    (
        ["evaluate", "--task", "mosei", "--model", "{model}", "--data", "{mosei}", "--out", "{out}"],
        2,
        "another task's model",
    ),
    (
        ["preprocess", "lrs2", "{corpus}", "--out", "{out}", "--limit", "-2"],
        2,
        "--limit: -2 must be at least 1",
    ),
    (
        [
            "distill",
            "--task",
            "emotion",
            "--teacher",
            "{model}",
            "--data",
            "{features}",
            "--out",
            "{out}",
            "--config-id",
            "9",
        ],
        2,
        "--config-id: 9 must be at most 5",
    ),
    (["data", "synth", "mosei", "{a-file}"], 2, "exists and is not a folder"),
    (["demo", "--out", "{a-file}"], 2, "exists and is not a folder"),
    (["demo", "--out", "{out}", "--seeds", "0"], 2, "--seeds: 0 must be at least 1"),
    (["demo", "--task", "emotion", "--out", "{out}", "--seeds", "-1"], 2, "--seeds: -1 must be at least 1"),
]


def _fill(args: list[str], files: dict[str, Path], out: Path) -> list[str]:
    return [a.format(**{k: str(v) for k, v in files.items()}, out=str(out)) for a in args]


@pytest.mark.parametrize(
    ("args", "code", "message"), BAD, ids=[" ".join(a[:2]) + f"-{i}" for i, (a, _, _) in enumerate(BAD)]
)
def test_bad_invocation_is_one_line(
    args: list[str],
    code: int,
    message: str,
    world: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    got = main(_fill(args, world, out))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), err
    assert len([line for line in lines if line.startswith("error: ")]) == 1, err
    assert message in lines[-1], err
    assert "weights_only" not in err  # never relay PyTorch's advice to load code from an untrusted file
    assert got == code, err
    assert not out.exists() and not Path(f"{out}.partial").exists()  # nothing that looks like work


def test_slurm_task_id_that_is_not_a_number(
    world: dict[str, Path], tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "abc")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "4")
    code = main(["preprocess", "lrs2", str(world["corpus"]), "--out", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert (
        code == 2 and "SLURM_ARRAY_TASK_ID='abc': expected a whole number" in err and "Traceback" not in err
    )


def test_an_internal_error_is_one_line(monkeypatch, capsys) -> None:
    import avkd.cli.artifacts as command

    def boom(*args, **kwargs):
        raise RuntimeError("something deep went wrong\nsecond line")

    monkeypatch.setattr(command, "load_artifact", boom)
    code = main(["artifacts", "show", "."])
    err = capsys.readouterr().err
    assert code == 1 and err.strip() == (
        "error: internal error: RuntimeError: something deep went wrong (rerun with AVKD_TRACEBACK=1 and report it)"
    )
