"""``python -m cli build-image``: a robot image from a model (build, smoke test, optional push)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from cli.common import add_common, emit, store_from

ENV_PASSWORD = "STUDIO_REGISTRY_PASSWORD"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build-image", help="build (and smoke-test, optionally push) the Docker image of a model")
    add_common(p)
    p.add_argument("--model", required=True, help="a model folder (with manifest.json) or an artefact id")
    p.add_argument("--tag", default="", help="image tag (default studio/<project>-<task>:<model id>)")
    p.add_argument("--profile", choices=("offline", "coral"), default="offline",
                   help="offline: no network during the build (wheels from this host); coral: + the pinned "
                        "libedgetpu / ai-edge-litert pair, checked by sha256 (docs/CORAL_RUNTIME.md)")
    p.add_argument("--libedgetpu-deb", help="coral: the libedgetpu .deb to use (its sha256 is recorded)")
    p.add_argument("--libedgetpu-folder", help="coral: a folder holding the libedgetpu .deb")
    p.add_argument("--offline", action="store_true", help="coral: never download the .deb")
    p.add_argument("--base-image", default="", help="base image (default $STUDIO_BASE_IMAGE or "
                                                     "studio/bookworm-python:latest, see scripts/make_base_image.sh)")
    p.add_argument("--no-smoke-test", action="store_true", help="skip running the image once")
    p.add_argument("--sample-image", help="image for the smoke test (default: one of the project's)")
    p.add_argument("--docker-url", help="Docker engine (default $DOCKER_HOST or the local socket)")
    p.add_argument("--push", metavar="REGISTRY", help="push to this registry (host:port) after the build")
    p.add_argument("--username", help="registry user (password from $STUDIO_REGISTRY_PASSWORD or a prompt)")
    p.add_argument("--quiet", action="store_true", help="do not echo the build log")
    p.set_defaults(func=cmd_build_image)


def _read_password(username: str) -> str:
    pw = os.environ.get(ENV_PASSWORD)
    if pw:
        return pw
    if sys.stdin.isatty():
        return getpass.getpass(f"Password for {username}: ")
    return sys.stdin.readline().rstrip("\r\n")


def cmd_build_image(args: argparse.Namespace) -> int:
    from core.data import artefacts
    from core.jobs import JobState, run_foreground

    from builder import jobs as bjobs

    store = store_from(args)
    params: dict = {"profile": args.profile, "tag": args.tag, "base_image": args.base_image,
                    "smoke_test": not args.no_smoke_test}
    model = Path(args.model)
    if (model / artefacts.MANIFEST).exists():
        params["model_dir"] = str(model.resolve())
    else:
        params["artefact_id"] = artefacts.artefact_path(store.root, args.model).name
    if args.sample_image:
        params["sample_image"] = str(Path(args.sample_image).resolve())
    if args.docker_url:
        params["docker_url"] = args.docker_url
    for key in ("libedgetpu_deb", "libedgetpu_folder"):
        if getattr(args, key, None):
            params[key] = str(Path(getattr(args, key)).resolve())
    if args.offline:
        params["allow_download"] = False
    password = None
    if args.push:
        if not args.username:
            raise ValueError("--push needs --username (the password comes from $STUDIO_REGISTRY_PASSWORD "
                             "or a prompt)")
        password = _read_password(args.username)  # read before the build: fail early, keep it in memory only

    if not args.quiet:
        bjobs.set_log_echo(lambda line: print(line, file=sys.stderr, flush=True))

    def on_event(ev: dict) -> None:
        if ev.get("message") and not args.quiet:
            print(f"[{(ev.get('fraction') or 0) * 100:5.1f}%] {ev['message']}", file=sys.stderr, flush=True)

    try:
        job = run_foreground(store, bjobs.KIND, params, on_event=on_event)
    finally:
        bjobs.set_log_echo(None)
    summary: dict = {"ok": job.state == JobState.SUCCEEDED, "job_id": job.id, "state": job.state.value,
                     "message": job.message}
    try:
        rec = bjobs.load_build(store.root, job.id)
    except FileNotFoundError:
        rec = {}
    for k in ("tag", "image_id", "size_bytes", "build_seconds", "context_dir", "profile", "base_image", "status",
              "run_command"):
        if k in rec:
            summary[k] = rec[k]
    if rec.get("smoke_test"):
        summary["smoke_test"] = {"ok": rec["smoke_test"]["ok"], "message": rec["smoke_test"]["message"],
                                 "device": rec["smoke_test"].get("device")}
    if job.error:
        summary["error"] = job.error
    if summary["ok"] and args.push:
        if not rec.get("image_id"):
            summary.update(ok=False, error="nothing to push: no image was built (no Docker engine?)")
        else:
            from builder.registry import PushError, push

            try:
                res = push(rec["tag"], args.push, args.username, password, base_url=args.docker_url,
                           on_log=None if args.quiet else (lambda l: print(l, file=sys.stderr, flush=True)))
                summary["push"] = res.to_dict()
            except PushError as exc:
                summary.update(ok=False, error=str(exc))
    password = None
    emit(summary)
    return 0 if summary["ok"] else 1
