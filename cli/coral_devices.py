"""``studio coral devices``: the Edge TPU runtime stack and the Edge TPUs of this machine.

Prints the Python runtime (name, version), the libedgetpu Debian package(s), the libedgetpu version
string (``edgetpu_version()``, read in a child process so a crashing runtime cannot take the CLI
down), the Edge TPUs found (sysfs / /dev and the runtime's own list), and the pair the robot
image's ``coral`` profile pins. Exit status 0 when the runtime could be opened, 1 otherwise.
"""

from __future__ import annotations

import argparse

from cli.common import add_common, emit


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("coral", help="the Edge TPU runtime: `coral devices`")
    inner = p.add_subparsers(dest="coral_command", required=True)
    d = inner.add_parser("devices", help="runtime, libedgetpu and Edge TPUs of this machine")
    add_common(d)
    d.add_argument("--device", default="auto", help="device to probe: auto, usb, usb:N, pci, pci:N")
    d.add_argument("--no-probe", action="store_true", help="do not open libedgetpu (not even in a child process)")
    d.set_defaults(func=cmd_devices)


def cmd_devices(args: argparse.Namespace) -> int:
    from builder import runtime_pins  # noqa: PLC0415 - the CLI is an entry point
    from coral_runtime import probe, versions  # noqa: PLC0415
    from coral_runtime.interpreter import normalize_device  # noqa: PLC0415

    device = normalize_device(args.device)
    res = None
    if not args.no_probe and not versions.stock_runtime_problem():
        res = probe.probe(device)
    info = versions.describe()
    rt = info["runtime"]
    print(f"runtime:     {rt['name'] or 'none'} {rt['version'] or ''}".rstrip()
          + (f" (TensorFlow {rt['tf']} line)" if rt.get("tf") else ""))
    pkgs = info["libedgetpu"]
    print("libedgetpu:  " + (", ".join(f"{p['package']} {p['version']}" for p in pkgs) or "no Debian package")
          + f" [{info['libedgetpu_lib']}]")
    print(f"version:     {info['edgetpu_version'] or '-'}")
    found = info["devices"]
    print("devices:     " + (", ".join(f"{d['device']} ({d['description']})" for d in found) or "none found"))
    if res is not None and res.devices:
        print("runtime saw: " + ", ".join(f"{d['type']} {d['path']}" for d in res.devices))
    for key in ("problem", "warning"):
        if info.get(key):
            print(f"{key}:     {info[key]}")
    if res is not None:
        print(f"probe:       {res.message}")
    pair = runtime_pins.pair_summary()
    print(f"robot image: {pair['libedgetpu']} (TF {pair['libedgetpu_tf']}) + {pair['runtime']} (TF {pair['runtime_tf']})")
    ok = bool(res and res.ok)
    emit({"ok": ok, "runtime": rt, "libedgetpu": pkgs, "edgetpu_version": info["edgetpu_version"],
          "devices": found, "probe": res.to_dict() if res else None, "problem": info.get("problem"),
          "warning": info.get("warning"), "robot_image": pair})
    return 0 if ok else 1
