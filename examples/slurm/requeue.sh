# Sourced by the avkd job scripts in this folder: pre-emption and requeue in one place.
#
# Slurm sends the signal named in `#SBATCH --signal=B:USR1@120` to the batch shell only (the B: prefix), 120 s
# before the time limit or on pre-emption. The shell must pass it on to avkd, which saves its full state at the next
# step and exits with code 75 (every rank stops at the same step). The job then requeues itself; the next run
# continues with --resume, bit-exact on the same number of processes.

AVKD_STOP_REQUESTED=0

# avkd_forward_signal PID HOW: from now on, SIGUSR1/USR2/TERM to this shell is passed on to the launcher PID. HOW is a
# signal name (srun forwards what it gets to every task it started) or WORKERS: SIGUSR1 to PID's children (a
# torchrun agent does not pass SIGUSR1 on, so its workers are signalled directly).
_avkd_on_signal() {
  AVKD_STOP_REQUESTED=1
  echo "$(date +%T) stop requested: passing it on to $AVKD_LAUNCHER ($AVKD_FORWARD)"
  if [ "$AVKD_FORWARD" = WORKERS ]; then
    pkill -USR1 -P "$AVKD_LAUNCHER"
  else
    kill -"$AVKD_FORWARD" "$AVKD_LAUNCHER"
  fi
}
avkd_forward_signal() {
  AVKD_LAUNCHER=$1
  AVKD_FORWARD=$2
  trap _avkd_on_signal USR1 USR2 TERM
}

# avkd_wait PID: wait for the launcher, also across the trap (a trap interrupts `wait`), and return its exit code.
avkd_wait() {
  local pid=$1 rc=0
  while true; do
    wait "$pid"; rc=$?
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
  done
  return "$rc"
}

# avkd_requeue_or_exit RC: exit code 75 from avkd (or a stop this shell passed on) requeues the job; anything else is
# the job's result. scontrol is often missing inside containers: then resubmit with sbatch, or say what to run.
avkd_requeue_or_exit() {
  local rc=$1
  if [ "$rc" -ne 75 ] && [ "$AVKD_STOP_REQUESTED" -eq 0 ]; then exit "$rc"; fi
  echo "$(date +%T) avkd saved its state (exit $rc); requeueing job ${SLURM_JOB_ID:-?}"
  if command -v scontrol >/dev/null 2>&1 && scontrol requeue "$SLURM_JOB_ID"; then exit 0; fi
  if command -v sbatch >/dev/null 2>&1 && [ -n "${AVKD_JOB_SCRIPT:-}" ]; then
    sbatch --dependency="afterany:$SLURM_JOB_ID" "$AVKD_JOB_SCRIPT" && exit 0
  fi
  echo "no scontrol or sbatch here: resubmit this script by hand; it continues with --resume" >&2
  exit 75
}
