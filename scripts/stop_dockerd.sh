#!/usr/bin/env bash
# Stop the dockerd that start_dockerd.sh started (by its PID file; nothing else).
set -euo pipefail
RUN_DIR="${STUDIO_DOCKER_RUN_DIR:-/tmp/studio-dockerd}"
PIDFILE="$RUN_DIR/dockerd.pid"
if [ ! -f "$PIDFILE" ]; then
    echo "no dockerd started by the studio ($PIDFILE missing)"
    exit 0
fi
PID="$(cat "$PIDFILE")"
if kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID"
    for _ in $(seq 1 60); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$PID" 2>/dev/null; then
        echo "dockerd $PID did not stop in 30 s; sending KILL" >&2
        kill -KILL "$PID" || true
    fi
fi
rm -f "$PIDFILE" "$RUN_DIR/dockerd.launcher.pid"
echo "dockerd $PID stopped"
