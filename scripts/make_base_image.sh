#!/usr/bin/env bash
# Make the robot images' Debian base (bookworm + python3 + pip) without any image registry:
#   debootstrap --variant=minbase --include=python3,python3-pip bookworm DIR MIRROR ; docker import
# Idempotent: does nothing when the image already exists (docker image inspect).
# The mirror is read from this machine's apt sources (or $STUDIO_DEBIAN_MIRROR).
#
# Usage: scripts/make_base_image.sh [IMAGE]   (default $STUDIO_BASE_IMAGE or studio/bookworm-python:latest)
set -euo pipefail

IMAGE="${1:-${STUDIO_BASE_IMAGE:-studio/bookworm-python:latest}}"
SUITE="${STUDIO_DEBIAN_SUITE:-bookworm}"
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER="$(command -v docker)"

if "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "base image $IMAGE already exists"
    exit 0
fi

mirror_from_apt_sources() {
    # deb822 sources first (URIs: lines of a stanza whose Suites has the suite), then one-line sources.
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v suite="$SUITE" '
            BEGIN { RS=""; FS="\n" }
            {
                uri=""; ok=0
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); uri=a[2] }
                    if ($i ~ /^Suites:/ && $i ~ ("[ \t]" suite "([ \t]|$)")) ok=1
                }
                if (ok && uri != "") { print uri; exit }
            }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v suite="$SUITE" '$1 == "deb" && $0 ~ ("[ \t]" suite "[ \t]") {
            for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { print $i; exit } }' "$f"
    done
}

MIRROR="${STUDIO_DEBIAN_MIRROR:-$(mirror_from_apt_sources | head -n 1)}"
if [ -z "$MIRROR" ]; then
    echo "no Debian mirror for $SUITE found in the apt sources; set STUDIO_DEBIAN_MIRROR" >&2
    exit 3
fi
command -v debootstrap >/dev/null || { echo "debootstrap not installed (apt-get install -y debootstrap)" >&2; exit 3; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/studio-rootfs.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
START=$(date +%s)
echo "debootstrap $SUITE (minbase + python3, python3-pip) into $WORK"
debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates "$SUITE" "$WORK/rootfs" "$MIRROR" \
    >"$WORK/debootstrap.log" 2>&1 || { tail -n 30 "$WORK/debootstrap.log" >&2; exit 1; }
# Keep the image small: no apt lists, no docs, no caches.
rm -rf "$WORK/rootfs/var/lib/apt/lists/"* "$WORK/rootfs/var/cache/apt/"*.bin "$WORK/rootfs/var/cache/apt/archives/"*.deb \
       "$WORK/rootfs/usr/share/doc/"* "$WORK/rootfs/usr/share/man/"* "$WORK/rootfs/usr/share/info/"*
tar -C "$WORK/rootfs" --numeric-owner -c . | "$DOCKER" import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap $SUITE minbase + python3 + python3-pip" - "$IMAGE" >/dev/null
echo "base image $IMAGE made in $(( $(date +%s) - START )) s: $("$DOCKER" image inspect --format '{{.Size}}' "$IMAGE") bytes"
