#!/usr/bin/env bash
# The real world, as a learner's laptop has it: a non-root user, a clone path with a space and
# non-ASCII letters, and the distribution's own Python (Debian 12: /usr/bin/python3, 3.11.2,
# the oldest the README promises). As that user: `make setup PYTHON=/usr/bin/python3`, strict
# nbval on notebooks 01 and 05 with their exercise probes (as `make test` runs them), then
# `course db status` and `course doctor`, and what a second OS user sees on this user's data
# directory. Run as root (it creates the user); anything else skips with the reason.
#
#   bash tests/world/floor_user.sh            # clones this repository's HEAD
#   WORLD_USER=someone bash tests/world/floor_user.sh
set -euo pipefail

SOURCE=$(cd "$(dirname "$0")/../.." && pwd)
WORLD_USER=${WORLD_USER:-course-world}
FLOOR_PYTHON=${FLOOR_PYTHON:-/usr/bin/python3}
PARENT="/tmp/курс asyncpg/ça va"
CLONE="$PARENT/course"

skip() { echo "== the real world: skipped: $*"; exit 0; }
step() { echo "== the real world: $*"; }
fail() { echo "FAILED (the real world): $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || skip "not root (it creates the OS user $WORLD_USER)"
command -v useradd >/dev/null 2>&1 || skip "no useradd on this machine"
command -v runuser >/dev/null 2>&1 || skip "no runuser on this machine"
[ -x "$FLOOR_PYTHON" ] || skip "no $FLOOR_PYTHON (the distribution's own Python)"

started=$(date +%s)
step "the floor Python is $FLOOR_PYTHON ($("$FLOOR_PYTHON" --version 2>&1))"

if ! id "$WORLD_USER" >/dev/null 2>&1; then
  step "creating the OS user $WORLD_USER"
  useradd --create-home --shell /bin/bash "$WORLD_USER"
fi
home=$(getent passwd "$WORLD_USER" | cut -d: -f6)

# pip may only reach its packages through the machine's pip configuration (a mirror, local
# wheels): the user gets the same one. uv does not read it; the Makefile falls back to pip.
for config in "$HOME/.config/pip/pip.conf" "$HOME/.pip/pip.conf"; do
  if [ -f "$config" ]; then
    install -d -o "$WORLD_USER" -g "$(id -gn "$WORLD_USER")" "$home/.config" "$home/.config/pip"
    install -m 0644 -o "$WORLD_USER" "$config" "$home/.config/pip/pip.conf"
    break
  fi
done

as_user() {
  # A clean login-like environment: no root PATH (pyenv shims), the proxy and pip settings kept.
  local keep=(HOME="$home" USER="$WORLD_USER" LOGNAME="$WORLD_USER" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8)
  local name
  for name in $(compgen -e | grep -E '^(PIP_|UV_|https?_proxy$|HTTPS?_PROXY$|no_proxy$|NO_PROXY$|SSL_CERT_FILE$)' || true); do
    keep+=("$name=${!name}")
  done
  runuser -u "$WORLD_USER" -- env -i "${keep[@]}" bash -c "$1"
}

step "cloning $(git -C "$SOURCE" rev-parse --short HEAD) into '$CLONE'"
if [ -d "$CLONE/.pgdata" ] && [ -x "$CLONE/.venv/bin/python" ]; then
  as_user "cd '$CLONE' && .venv/bin/python -m helpers db stop" || true
fi
rm -rf "/tmp/курс asyncpg"
mkdir -p "$PARENT"
git clone --quiet --no-hardlinks "$SOURCE" "$CLONE"
git -C "$CLONE" checkout --quiet --detach "$(git -C "$SOURCE" rev-parse HEAD)"
chown -R "$WORLD_USER:" "/tmp/курс asyncpg"

stage() {  # stage NAME COMMAND: run COMMAND as the user in the clone, timed
  local began=$(date +%s)
  step "$1"
  as_user "cd '$CLONE' && $2" || fail "$1"
  echo "== the real world: $1 took $(( $(date +%s) - began )) s"
}

stage "make setup PYTHON=$FLOOR_PYTHON" "make setup PYTHON=$FLOOR_PYTHON"
as_user "cd '$CLONE' && .venv/bin/python -c 'import sys; print(sys.version)'" | grep -q "^$("$FLOOR_PYTHON" -c 'import sys; print(sys.version.split()[0])')" \
  || fail ".venv does not run $FLOOR_PYTHON"
stage "strict nbval on 01 and 05 with their exercise probes" \
  ".venv/bin/python -m pytest -p no:cacheprovider notebooks/01_connect.ipynb notebooks/05_transactions.ipynb"
stage "course db status" ".venv/bin/course db status"
stage "course doctor" ".venv/bin/course doctor"

# A second OS user on this user's data directory: one paragraph naming it and its owner, no traceback.
step "a second OS user (nobody) on $WORLD_USER's data directory"
other=$(runuser -u nobody -- env -i PATH=/usr/bin:/bin HOME=/tmp COURSE_PGDATA="$CLONE/.pgdata" \
        "$CLONE/.venv/bin/python" -m helpers db status 2>&1) && fail "db status as nobody succeeded: $other"
echo "$other"
grep -q "belongs to the OS user '$WORLD_USER', not to you ('nobody'); its server is running" <<<"$other" \
  || fail "the second user's message does not name the owner and the running server"
! grep -q Traceback <<<"$other" || fail "a traceback for the second user"
other=$(runuser -u nobody -- env -i PATH=/usr/bin:/bin HOME=/tmp COURSE_PGDATA="$CLONE/notebooks/pgdata" \
        "$CLONE/.venv/bin/python" -m helpers db start 2>&1) && fail "db start as nobody in $WORLD_USER's clone succeeded"
grep -q "The folder $CLONE/notebooks (owner: OS user '$WORLD_USER') is not writable by you ('nobody')" <<<"$other" \
  || fail "the second user's message does not name the folder it cannot write: $other"

step "stopping the embedded server"
as_user "cd '$CLONE' && .venv/bin/course db stop"
echo "== the real world took $(( $(date +%s) - started )) s"
