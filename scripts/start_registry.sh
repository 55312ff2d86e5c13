#!/usr/bin/env bash
# Start Debian's docker-registry on 127.0.0.1 with htpasswd auth over plain HTTP (idempotent).
#
#   STUDIO_REGISTRY_USER / STUDIO_REGISTRY_PASSWORD   the one account (password read from the
#                                                      environment and given to htpasswd on stdin)
#   scripts/start_registry.sh [PORT] [DIR]             default 5000 and /tmp/studio-registry
#   scripts/start_registry.sh --stop [DIR]             stop the registry started here (by its PID file)
#
# DIR holds config.yml, htpasswd, data/, registry.pid and registry.log.
set -euo pipefail

if [ "${1:-}" = "--stop" ]; then
    DIR="${2:-${STUDIO_REGISTRY_DIR:-/tmp/studio-registry}}"
    if [ -f "$DIR/registry.pid" ]; then
        PID="$(cat "$DIR/registry.pid")"
        if kill -0 "$PID" 2>/dev/null; then
            kill -TERM "$PID"
            for _ in $(seq 1 40); do kill -0 "$PID" 2>/dev/null || break; sleep 0.25; done
            kill -0 "$PID" 2>/dev/null && kill -KILL "$PID" || true
        fi
        rm -f "$DIR/registry.pid"
        echo "registry $PID stopped"
    else
        echo "no registry started in $DIR"
    fi
    exit 0
fi

PORT="${1:-${STUDIO_REGISTRY_PORT:-5000}}"
DIR="${2:-${STUDIO_REGISTRY_DIR:-/tmp/studio-registry}}"
USER_NAME="${STUDIO_REGISTRY_USER:-studio}"
BIN="$(command -v docker-registry || true)"
[ -n "$BIN" ] || { echo "docker-registry not installed (apt-get install -y docker-registry)" >&2; exit 3; }
command -v htpasswd >/dev/null || { echo "htpasswd not installed (apt-get install -y apache2-utils)" >&2; exit 3; }

answers() {
    # The registry answers /v2/ with 401 (auth needed) once it is up.
    python3 - "$PORT" <<'PY'
import sys, urllib.request, urllib.error
try:
    urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
        f"http://127.0.0.1:{sys.argv[1]}/v2/", timeout=1)
    sys.exit(0)
except urllib.error.HTTPError as e:
    sys.exit(0 if e.code in (200, 401) else 1)
except Exception:
    sys.exit(1)
PY
}

mkdir -p "$DIR/data"
if [ -f "$DIR/registry.pid" ] && kill -0 "$(cat "$DIR/registry.pid")" 2>/dev/null && answers; then
    echo "registry already running on 127.0.0.1:$PORT (pid $(cat "$DIR/registry.pid"))"
    exit 0
fi

if [ -z "${STUDIO_REGISTRY_PASSWORD:-}" ]; then
    echo "set STUDIO_REGISTRY_PASSWORD (and optionally STUDIO_REGISTRY_USER)" >&2
    exit 2
fi
umask 077
printf '%s' "$STUDIO_REGISTRY_PASSWORD" | htpasswd -B -i -c "$DIR/htpasswd" "$USER_NAME" 2>/dev/null
cat >"$DIR/config.yml" <<YML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $DIR/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: studio-registry
    path: $DIR/htpasswd
YML
nohup "$BIN" serve "$DIR/config.yml" >"$DIR/registry.log" 2>&1 </dev/null &
echo $! >"$DIR/registry.pid"
for _ in $(seq 1 80); do
    if answers; then
        echo "registry on 127.0.0.1:$PORT (pid $(cat "$DIR/registry.pid"), user $USER_NAME)"
        exit 0
    fi
    kill -0 "$(cat "$DIR/registry.pid")" 2>/dev/null || break
    sleep 0.25
done
echo "registry did not come up; log:" >&2
tail -n 20 "$DIR/registry.log" >&2 || true
exit 1
