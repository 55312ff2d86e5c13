#!/usr/bin/env bash
# Start Debian's dockerd by hand for the studio (idempotent).
#
# No docker0 bridge, no iptables, no masquerading: containers run only with
# --network host or --network none. Prints the PID file path on success.
# If an engine already answers on the socket, nothing is started.
#
# Env: STUDIO_DOCKER_RUN_DIR (default /tmp/studio-dockerd) holds dockerd.pid and dockerd.log.
set -euo pipefail

RUN_DIR="${STUDIO_DOCKER_RUN_DIR:-/tmp/studio-dockerd}"
SOCK="${STUDIO_DOCKER_SOCK:-/var/run/docker.sock}"
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER="$(command -v docker || true)"
mkdir -p "$RUN_DIR"

engine_up() {
    [ -S "$SOCK" ] && [ -n "$DOCKER" ] && "$DOCKER" -H "unix://$SOCK" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

if engine_up; then
    echo "dockerd already reachable on $SOCK"
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    echo "dockerd not installed (apt-get install -y docker.io)" >&2
    exit 3
fi
if [ "$(id -u)" != 0 ]; then
    echo "dockerd must be started as root" >&2
    exit 3
fi

# A stale PID file whose process is gone.
if [ -f "$RUN_DIR/dockerd.pid" ] && ! kill -0 "$(cat "$RUN_DIR/dockerd.pid")" 2>/dev/null; then
    rm -f "$RUN_DIR/dockerd.pid"
fi

if [ ! -f "$RUN_DIR/dockerd.pid" ]; then
    nohup dockerd \
        --host "unix://$SOCK" \
        --bridge=none --iptables=false --ip-masq=false --ip6tables=false \
        --pidfile "$RUN_DIR/dockerd.pid" \
        >"$RUN_DIR/dockerd.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/dockerd.launcher.pid"
fi

for _ in $(seq 1 120); do
    if engine_up; then
        echo "dockerd started (pid $(cat "$RUN_DIR/dockerd.pid" 2>/dev/null || echo '?'), log $RUN_DIR/dockerd.log)"
        exit 0
    fi
    sleep 0.5
done
echo "dockerd did not come up; last log lines:" >&2
tail -n 20 "$RUN_DIR/dockerd.log" >&2 || true
exit 1
