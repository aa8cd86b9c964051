"""The Slurm job scripts of examples/slurm: they parse, and their pre-emption path (signal passed on, exit 75,
requeue with scontrol, or sbatch, or a message) works, with stand-ins for Slurm's commands and for avkd."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "slurm"
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None or not shutil.which("pkill"), reason="needs bash and pkill")

# A stand-in for a torchrun agent: it starts one worker and exits with the worker's code (75 once the worker saved
# on SIGUSR1). The worker writes "ready" when its handler is installed.
LAUNCHER = f"""
import signal, subprocess, sys
worker = subprocess.Popen([{sys.executable!r}, "-c", '''
import signal, sys, time, pathlib
def stop(*_):
    pathlib.Path(sys.argv[1], "saved").write_text("state")
    sys.exit(75)
signal.signal(signal.SIGUSR1, stop)
pathlib.Path(sys.argv[1], "ready").write_text("")
time.sleep(60)
''', sys.argv[1]])
signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # like torchrun: the agent itself does not act on SIGUSR1
sys.exit(worker.wait())
"""


def test_every_job_script_parses() -> None:
    scripts = sorted(EXAMPLES.glob("*.sbatch"))
    assert {s.name for s in scripts} >= {
        "train_single_node.sbatch",
        "distill_multi_node.sbatch",
        "srun_tasks.sbatch",
        "preprocess_array.sbatch",
    }
    for script in [*scripts, EXAMPLES / "requeue.sh"]:
        subprocess.run([BASH, "-n", str(script)], check=True)
        assert "--resume" in script.read_text() or script.name == "requeue.sh"


def _job(tmp_path: Path, tools: dict[str, str]) -> subprocess.Popen:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in tools.items():
        (bin_dir / name).write_text(f"#!{BASH}\n{body}\n")
        (bin_dir / name).chmod(0o755)
    (tmp_path / "launcher.py").write_text(LAUNCHER)
    job = f"""
source {EXAMPLES / "requeue.sh"}
{sys.executable} {tmp_path / "launcher.py"} {tmp_path} &
LAUNCHER=$!
avkd_forward_signal "$LAUNCHER" WORKERS
avkd_wait "$LAUNCHER"
avkd_requeue_or_exit $?
"""
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SLURM_JOB_ID": "4242", "AVKD_JOB_SCRIPT": "job.sbatch"}
    proc = subprocess.Popen(
        [BASH, "-c", job], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 30
    while not (tmp_path / "ready").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()[0]
        time.sleep(0.02)
    return proc


def _preempt(proc: subprocess.Popen) -> tuple[int, str]:
    os.kill(proc.pid, 10)  # SIGUSR1 to the batch shell, as `#SBATCH --signal=B:USR1@120` sends it
    out, _ = proc.communicate(timeout=30)
    return proc.returncode, out


def test_a_stop_signal_reaches_the_workers_and_the_job_requeues(tmp_path: Path) -> None:
    proc = _job(tmp_path, {"scontrol": f'echo "$@" > {tmp_path}/scontrol.args'})
    code, out = _preempt(proc)
    assert code == 0, out
    assert (tmp_path / "saved").read_text() == "state"  # the worker got the signal and saved
    assert (tmp_path / "scontrol.args").read_text().split() == ["requeue", "4242"]
    assert "stop requested" in out and "requeueing job 4242" in out


def test_without_scontrol_the_job_resubmits_itself_with_sbatch(tmp_path: Path) -> None:
    proc = _job(tmp_path, {"sbatch": f'echo "$@" > {tmp_path}/sbatch.args'})
    code, out = _preempt(proc)
    assert code == 0, out
    assert (tmp_path / "sbatch.args").read_text().split() == ["--dependency=afterany:4242", "job.sbatch"]


def test_without_slurm_commands_the_job_says_what_to_do_and_exits_75(tmp_path: Path) -> None:
    proc = _job(tmp_path, {})
    code, out = _preempt(proc)
    assert code == 75 and "resubmit this script by hand" in out, out
