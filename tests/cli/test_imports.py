"""`avkd import vocalist`: an official-style checkpoint into a model artifact."""

from __future__ import annotations

from pathlib import Path

import torch

from avkd.cli.main import main
from avkd.models import build_model
from avkd.models.io import load_model


def test_import_official_style_checkpoint(tmp_path: Path, capsys) -> None:
    torch.manual_seed(1)
    source = build_model("mtdvocalist").eval()
    ckpt = tmp_path / "pure_MTDVocaLiST.pth"
    # DataParallel-saved files prefix every key with "module."; the official ones do not. Both load.
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}, "global_step": 7}, ckpt
    )
    code = main(["import", "vocalist", str(ckpt), "--out", str(tmp_path / "m"), "--width", "200"])
    assert code == 0
    loaded = load_model(tmp_path / "m")
    assert (loaded.spec.pixel_order, loaded.spec.pixel_range) == ("rgb", "byte")  # MTDVocaLiST's convention
    assert loaded.artifact.metrics["parameters"] == 13_280_961
    video, mel = torch.rand(2, 15, 48, 96), torch.randn(2, 1, 80, 16)
    with torch.inference_mode():
        assert torch.equal(loaded.model(video, mel), source(video, mel))


def test_import_wrong_width_is_one_line(tmp_path: Path, capsys) -> None:
    ckpt = tmp_path / "student.pth"
    torch.save({"state_dict": build_model("mtdvocalist").state_dict()}, ckpt)
    code = main(["import", "vocalist", str(ckpt), "--out", str(tmp_path / "m"), "--width", "512"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {ckpt}: does not fit vocalist") and err.count("\n") == 1
    assert not (tmp_path / "m").exists()
