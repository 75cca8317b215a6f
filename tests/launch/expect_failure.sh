#!/usr/bin/env bash
# expect_failure.sh REGEX CMD...: runs CMD and passes only if it
#   - exits non-zero,
#   - prints exactly one "tori: error" line on stderr, and that line matches REGEX (a bad input
#     is reported once, by rank 0, even under mpirun with several ranks),
#   - prints nothing on stdout (no partial output passed off as a result).
set -u
regex="$1"; shift
out="$(mktemp)"; err="$(mktemp)"
trap 'rm -f "$out" "$err"' EXIT
timeout 60 "$@" >"$out" 2>"$err"
code=$?
fail() { echo "FAIL: $*"; echo "--- command: $*"; echo "--- stdout:"; cat "$out"; echo "--- stderr:"; cat "$err"; exit 1; }
[[ $code -ne 0 ]] || fail "exit code 0, expected non-zero"
[[ $code -ne 124 ]] || fail "timed out (hang)"
n=$(grep -c "tori: error" "$err")
[[ $n -eq 1 ]] || fail "$n 'tori: error' lines on stderr, expected exactly 1"
grep "tori: error" "$err" | grep -Eq -- "$regex" || fail "error line does not match /$regex/"
[[ ! -s "$out" ]] || fail "stdout not empty"
echo "ok (exit $code): $(grep 'tori: error' "$err")"
