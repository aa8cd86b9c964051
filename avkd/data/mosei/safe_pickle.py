"""Read MulT's pickles without running code: an unpickler that only rebuilds numpy arrays and plain containers."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from avkd.core.errors import ArtifactError

__all__ = ["load_pickle_safely"]


#: Globals a pickle of a dict of numpy arrays needs (numpy 1.x and 2.x module names, protocols 2-5).
_PICKLE_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # protocol-2 pickles store array bytes as latin-1 text
    ("collections", "OrderedDict"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def __init__(self, handle: Any, path: Path) -> None:
        super().__init__(handle, encoding="latin1")  # python-2 era pickles (MulT's) need latin1 for arrays
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PICKLE_ALLOWED:
            return super().find_class(module, name)
        raise ArtifactError(
            f"{self.path}: refusing to load {module}.{name} from a pickle (only numpy arrays are allowed)"
        )


def load_pickle_safely(path: str | Path) -> Any:
    """Unpickle ``path`` allowing only numpy arrays, dtypes and plain containers (no code runs)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return _ArrayUnpickler(handle, path).load()
    except ArtifactError:
        raise
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except Exception as exc:  # truncated or not a pickle at all
        raise ArtifactError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from None
