#!/usr/bin/env bash
# `npm run lint`: every static check the project has, in one command, for CI and before a commit.
#
# Decides: which checks count as "lint" and their order — TypeScript types, protobuf style (buf),
# Biome (lint rules, formatting and import order), the house rules (no import circle, kernel/
# points inward, no source file over 600 lines, no class over 20 public members), file references in comments and docs, and the
# systemd unit's sandbox score
# (`systemd-analyze security` overall exposure must be <= 2.0).
# Layer: tooling (outside src/). Why one script: CI and developers run the same gate.
#
# Every check runs even when an earlier one fails, so one run shows all problems; the script exits
# non-zero if any check failed. Only a missing `systemd-analyze` (non-systemd machine, macOS) is
# tolerated: that check is reported as skipped, never silently passed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MAX_EXPOSURE="2.0"
UNIT="systemd/qmkd.service"
FAILED=()

heading() {
  printf '\n==> %s\n' "$1"
}

# run NAME CMD... — runs one check, records NAME as failed on a non-zero exit.
run() {
  local name="$1"
  shift
  heading "$name: $*"
  if "$@"; then
    echo "--- $name: ok"
  else
    echo "--- $name: FAILED (exit $?)"
    FAILED+=("$name")
  fi
}

check_systemd_unit() {
  local out status=0
  # SYSTEMD_COLORS=0: no ANSI codes in the line parsed below. --offline needs the unit as a path.
  out="$(SYSTEMD_COLORS=0 systemd-analyze security --offline=true "$UNIT" 2>&1)" || status=$?
  local line score
  line="$(grep -E 'Overall exposure level for' <<<"$out" | tail -n 1 || true)"
  score="$(sed -nE 's/.*Overall exposure level for [^:]*: ([0-9]+(\.[0-9]+)?).*/\1/p' <<<"$line")"
  if [[ -z "$score" ]]; then
    echo "$out"
    echo "ERROR: could not parse the overall exposure score from systemd-analyze output" \
      "(exit status $status); expected a line like 'Overall exposure level for qmkd.service: 1.9 OK'."
    return 1
  fi
  echo "$line"
  if awk -v s="$score" -v max="$MAX_EXPOSURE" 'BEGIN { exit !(s > max) }'; then
    grep -E '^✗' <<<"$out" || true
    echo "ERROR: $UNIT exposure score $score is above the allowed $MAX_EXPOSURE." \
      "Restore the sandboxing directives listed with ✗ above, or justify a higher limit."
    return 1
  fi
  echo "$UNIT exposure score $score <= $MAX_EXPOSURE"
}

run "typescript" npx tsc --noEmit -p tsconfig.json
run "buf" npx buf lint
run "generated types" node scripts/gen-types.mjs --check
run "house rules" node scripts/check-house.mjs
run "file references" node scripts/check-refs.mjs

# Biome errors out on a path that does not exist; lint the directories that are present.
BIOME_DIRS=()
for d in src test bench scripts examples; do
  if [[ -d "$d" ]]; then BIOME_DIRS+=("$d"); else echo "(biome: $d/ does not exist, not linted)"; fi
done
# `biome check` = lint rules + formatter + import order; fix locally with
# `npx biome check --write src test bench scripts examples`.
run "biome" npx biome check "${BIOME_DIRS[@]}"

# Not through run(): a skipped check must read "skipped" in the log, not "ok".
heading "systemd: systemd-analyze security --offline=true $UNIT (exposure <= $MAX_EXPOSURE)"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "--- systemd: SKIPPED — systemd-analyze is not installed on this machine, so the exposure"
  echo "    score of $UNIT was not checked. Run lint on a systemd host to check it."
elif check_systemd_unit; then
  echo "--- systemd: ok"
else
  echo "--- systemd: FAILED"
  FAILED+=("systemd")
fi

heading "summary"
if ((${#FAILED[@]} > 0)); then
  echo "lint FAILED: ${FAILED[*]}"
  exit 1
fi
echo "lint passed"
