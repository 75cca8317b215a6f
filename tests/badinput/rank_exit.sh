#!/usr/bin/env bash
# rank_exit.sh CMD...: runs CMD (one MPI rank, started by mpirun) and records its exit code in
# $TORI_BADINPUT_RANKS/rank.<rank>, so that check.py can tell that every rank exited non-zero.
# mpirun terminates the other ranks as soon as one exits non-zero; the trap keeps this shell
# alive until its own rank has exited, so the code is recorded (CMD runs in the background with
# the default SIGTERM handling and gets the signal too).
trap 'terminated=1' TERM
"$@" &
pid=$!
while :; do
  wait "$pid"
  code=$?
  # wait returns > 128 when the trap interrupted it; the rank is still running then.
  kill -0 "$pid" 2>/dev/null || break
done
echo "$code" >"$TORI_BADINPUT_RANKS/rank.${OMPI_COMM_WORLD_RANK:-0}"
exit "$code"
