"""``avkd import syncnet``: a file shaped like the released ``syncnet_v2.model`` into a model artifact."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from avkd.cli.main import main
from avkd.core.errors import UsageError
from avkd.models import build_model
from avkd.models.io import load_model
from avkd.tasks.sync.imports import import_syncnet


@pytest.fixture(scope="module")
def source() -> torch.nn.Module:
    """A randomly initialised SyncNet with non-trivial BatchNorm statistics (else eval-mode BN is the identity)."""
    torch.manual_seed(3)
    model = build_model("syncnet")
    g = torch.Generator().manual_seed(4)
    for name, buf in model.named_buffers():
        if name.endswith("running_mean"):
            buf.copy_(torch.rand(buf.shape, generator=g) - 0.5)
        elif name.endswith("running_var"):
            buf.copy_(torch.rand(buf.shape, generator=g) + 0.5)
    return model.eval()


def released_style(model: torch.nn.Module, path: Path) -> Path:
    """A bare state dict with the official key names, without BatchNorm's ``num_batches_tracked`` (files from
    PyTorch < 0.4.1 lack it) and in the legacy (pre-1.6, non-zip) serialisation."""
    state = OrderedDict((k, v.clone()) for k, v in model.state_dict().items() if "num_batches" not in k)
    torch.save(state, path, _use_new_zipfile_serialization=False)
    return path


def test_import_a_released_style_file(tmp_path: Path, source: torch.nn.Module, capsys) -> None:
    ckpt = released_style(source, tmp_path / "syncnet_v2.model")
    code = main(["import", "syncnet", str(ckpt), "--out", str(tmp_path / "sn")])
    out = capsys.readouterr().err  # the summary line goes to stderr (stdout is for --json)
    assert code == 0 and "13,631,616 parameters" in out and "bgr-byte" in out
    loaded = load_model(tmp_path / "sn")
    assert loaded.spec.name == "syncnet" and (loaded.spec.pixel_order, loaded.spec.pixel_range) == (
        "bgr",
        "byte",
    )
    assert loaded.artifact.metrics["parameters"] == 13_631_616
    g = torch.Generator().manual_seed(0)
    video, mfcc = torch.rand(1, 3, 5, 224, 224, generator=g) * 255, torch.randn(2, 1, 13, 20, generator=g)
    with torch.inference_mode():
        assert torch.equal(loaded.model.encode_audio(mfcc), source.encode_audio(mfcc))
        assert torch.equal(loaded.model.encode_video(video), source.encode_video(video))


def test_a_file_with_the_counters_also_imports(tmp_path: Path, source: torch.nn.Module) -> None:
    ckpt = tmp_path / "new.model"
    torch.save(source.state_dict(), ckpt)
    art = import_syncnet(ckpt, tmp_path / "sn")
    state = load_model(art.path).model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in source.state_dict().items())


def test_a_file_that_does_not_fit_is_one_line(tmp_path: Path, source: torch.nn.Module, capsys) -> None:
    state = source.state_dict()
    state.pop("netcnnlip.18.weight")
    ckpt = tmp_path / "broken.model"
    torch.save(state, ckpt)
    code = main(["import", "syncnet", str(ckpt), "--out", str(tmp_path / "sn")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {ckpt}: does not fit syncnet") and err.count("\n") == 1
    assert "netcnnlip.18.weight" in err and not (tmp_path / "sn").exists()
    # A VocaLiST checkpoint is not a SyncNet one.
    torch.save({"state_dict": build_model("vocalist_lite").state_dict()}, ckpt)
    with pytest.raises(UsageError, match="missing"):
        import_syncnet(ckpt, tmp_path / "sn")
