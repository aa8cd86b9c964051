"""CLI start-up: ``avkd --help`` (and the other commands that need no model) against ``import torch``.

Each command runs as a fresh interpreter, as a user's shell starts it, in interleaved rounds (medians). The
straightforward way is a CLI whose modules import the library at the top: every command, ``--help`` included,
then pays for ``import torch``, so ``python -c "import torch"`` is its floor.

Usage: python benchmarks/startup.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "avkd --help": [sys.executable, "-m", "avkd", "--help"],
    "avkd train --help": [sys.executable, "-m", "avkd", "train", "--help"],
    "avkd artifacts show": None,  # filled with a temporary artifact below
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
}


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def torch_free(argv: list[str]) -> bool:
    """Whether the command's process finishes without ``torch`` in ``sys.modules``."""
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['avkd', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('avkd', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *argv[3:]], capture_output=True, text=True, check=True
    ).stdout
    return out.strip().splitlines()[-1] == "False"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        artifact = Path(tmp) / "art"
        artifact.mkdir()
        (artifact / "avkd.json").write_text(
            json.dumps({"kind": "demo", "schema": 1, "status": "complete", "id": "0" * 16, "files": {}})
        )
        commands = dict(COMMANDS)
        commands["avkd artifacts show"] = [sys.executable, "-m", "avkd", "artifacts", "show", str(artifact)]
        for argv in commands.values():
            timed(argv)  # warm the page cache once
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, argv in commands.items():
                times[name].append(timed(argv))
        medians = {name: sorted(v)[len(v) // 2] for name, v in times.items()}
        floor = medians['python -c "import torch"']
        print(f"start-up, median of {args.rounds} interleaved rounds (fresh interpreter each):")
        for name, seconds in medians.items():
            note = ""
            if name.startswith("avkd"):
                free = torch_free(commands[name])
                note = f"  {floor / seconds:.1f}x faster than import torch; torch imported: {not free}"
            print(f"  {name:<26} {seconds * 1000:7.0f} ms{note}")


if __name__ == "__main__":
    main()
