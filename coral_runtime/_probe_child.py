"""Child process of ``coral_runtime.probe``: open the Edge TPU runtime where a crash costs nothing.

Run as ``python _probe_child.py '<json>'`` with {"lib", "device", "model"}. Imports only the
standard library, numpy and ai_edge_litert (tflite_runtime as a fallback). Prints one JSON line
per finished stage, so that when libedgetpu kills this process the parent still knows how far it
got and which version string it read:

    {"stage": "dlopen"} {"stage": "version", "version": ...} {"stage": "devices", "devices": [...]}
    {"stage": "delegate"} {"stage": "invoke"} {"stage": "done", "ok": true}
    {"stage": "<stage>", "ok": false, "error": "..."}   a normal failure (exit 0)
"""

import ctypes
import json
import sys


def say(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


class _Device(ctypes.Structure):  # struct edgetpu_device {enum edgetpu_device_type type; const char* path;}
    _fields_ = [("type", ctypes.c_int), ("path", ctypes.c_char_p)]


def _c_api(lib):
    """edgetpu_version() and edgetpu_list_devices() of edgetpu_c.h, where the library exports them."""
    if hasattr(lib, "edgetpu_version"):
        lib.edgetpu_version.restype = ctypes.c_char_p
        raw = lib.edgetpu_version()
        say(stage="version", version=raw.decode("utf-8", "replace") if raw else None)
    if hasattr(lib, "edgetpu_list_devices"):
        lib.edgetpu_list_devices.restype = ctypes.POINTER(_Device)
        n = ctypes.c_size_t(0)
        ptr = lib.edgetpu_list_devices(ctypes.byref(n))
        found = [{"type": "pci" if ptr[i].type == 0 else "usb",
                  "path": (ptr[i].path or b"").decode("utf-8", "replace")} for i in range(n.value)]
        if ptr and hasattr(lib, "edgetpu_free_devices"):
            lib.edgetpu_free_devices(ptr)
        say(stage="devices", devices=found)


def main(args):
    lib_name, device, model = args["lib"], args.get("device") or "", args.get("model")
    try:
        lib = ctypes.CDLL(lib_name)
    except OSError as exc:
        say(stage="dlopen", ok=False, error=f"OSError: {exc}")
        return
    say(stage="dlopen")
    _c_api(lib)
    try:
        from ai_edge_litert import interpreter as lite
    except ImportError:
        from tflite_runtime import interpreter as lite
    options = {"device": device} if device and device != "auto" else {}
    try:
        delegate = lite.load_delegate(lib_name, options)
    except (OSError, ValueError, RuntimeError) as exc:
        say(stage="delegate", ok=False, error=f"{type(exc).__name__}: {exc}")
        return
    say(stage="delegate")
    if model:
        import numpy as np

        try:
            it = lite.Interpreter(model_path=model, experimental_delegates=[delegate])
            it.allocate_tensors()
            d = it.get_input_details()[0]
            it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
            it.invoke()
        except (OSError, ValueError, RuntimeError) as exc:
            say(stage="invoke", ok=False, error=f"{type(exc).__name__}: {exc}")
            return
        say(stage="invoke")
    say(stage="done", ok=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
