#!/usr/bin/env bash
# wait_policy_check.sh TORI MPIEXEC: tori sets OpenMP's wait policy before libgomp starts when the
# host's cores are oversubscribed, and leaves it alone otherwise (launch/wait_policy.hpp). What
# libgomp actually runs with is read from libgomp itself: OMP_DISPLAY_ENV=verbose makes it print its
# GOMP_SPINCOUNT when it loads (0 = passive, 300000 = its default, 30000000000 = active), once per
# process start, so a re-executed process prints it twice, the second time with the new policy.
set -u
tori="$1"; mpiexec="$2"
# The cases set the policy themselves: start from none (a shell that exports one would look like "user").
unset OMP_WAIT_POLICY GOMP_SPINCOUNT TORI_OMP_WAIT_POLICY TORI_OMP_WAIT_POLICY_REEXEC
cores=$(nproc --all)  # all online CPUs, as tori counts them (runtime::cores_on_host), not this shell's affinity
threads=$(( cores > 1 ? cores : 2 ))  # 2 ranks x this many threads always exceed the cores
fails=0
# check NAME "EXPECTED SPINCOUNTS (sorted)" ENV... -- CMD...
check() {
  local name="$1" want="$2"; shift 2
  local envs=()
  while [[ "$1" != "--" ]]; do envs+=("$1"); shift; done
  shift
  local out
  out=$(env OMP_DISPLAY_ENV=verbose "${envs[@]}" timeout 120 "$@" 2>&1)
  local code=$?
  local got
  got=$(grep -o "GOMP_SPINCOUNT = '[0-9]*'" <<<"$out" | grep -o "[0-9]*" | sort -n | tr '\n' ' ' | sed 's/ $//')
  if [[ $code -ne 0 || "$got" != "$want" ]]; then
    echo "FAIL $name: exit $code, libgomp spin counts [$got], expected [$want]"
    echo "--- command: ${envs[*]} $*"; echo "$out" | tail -20
    fails=$((fails + 1))
  else
    echo "ok   $name: [$got]"
  fi
}
mpi=("$mpiexec" -np 2 --oversubscribe --bind-to none)
# Oversubscribed (2 ranks x $threads threads on $cores cores): each rank starts with the default
# (300000) and re-executes once with OMP_WAIT_POLICY=passive (0).
check oversubscribed "0 0 300000 300000" -- "${mpi[@]}" "$tori" --threads "$threads" presets
check oversubscribed_threads_after_command "0 0 300000 300000" -- "${mpi[@]}" "$tori" presets --threads="$threads"
# The user's choice stands, whatever the load: no re-exec.
check user_active "30000000000 30000000000" OMP_WAIT_POLICY=active -- "${mpi[@]}" "$tori" --threads "$threads" presets
check user_spincount "1234 1234" GOMP_SPINCOUNT=1234 -- "${mpi[@]}" "$tori" --threads "$threads" presets
# Not oversubscribed: libgomp's default, no re-exec.
check one_rank_default_threads "300000" -- "$tori" presets
check one_thread_per_rank "300000 300000" -- "${mpi[@]}" "$tori" --threads 1 presets
# A passive policy tori set in a parent process (inherited) is taken back where it does not apply.
check inherited_not_oversubscribed "0 300000" OMP_WAIT_POLICY=passive TORI_OMP_WAIT_POLICY=passive -- "$tori" presets
# And the log says what was chosen (1 rank with one thread more than the cores).
log=$("$tori" --threads $((cores + 1)) --log-level debug presets 2>&1 >/dev/null)
want="OpenMP wait policy: passive (tori; 1 rank(s) on this host x $((cores + 1)) thread(s) on $cores core(s): oversubscribed)"
if grep -qF "$want" <<<"$log"; then echo "ok   log line"; else
  echo "FAIL log line: expected '$want' in:"; echo "$log"; fails=$((fails + 1)); fi
[[ $fails -eq 0 ]] && echo "PASSED" || { echo "FAILED: $fails case(s)"; exit 1; }
