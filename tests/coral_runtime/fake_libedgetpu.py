"""Real shared libraries standing in for libedgetpu, compiled with gcc in the tests.

They export what LiteRT's ``load_delegate`` and our probe call (``tflite_plugin_create_delegate``,
``tflite_plugin_destroy_delegate``, ``edgetpu_version``, ``edgetpu_list_devices``,
``edgetpu_free_devices``), but there is no Edge TPU behind them:

- ``crash``: ``tflite_plugin_create_delegate`` dereferences a null pointer (SIGSEGV), as Coral's
  stock libedgetpu does with a too new runtime;
- ``dummy``: never makes a delegate (the payload of the test .deb, tests/builder/dummy_deb.py);
- ``flaky``: the first call (no marker file at ``$FAKE_EDGETPU_MARKER``) fails (returns NULL, as a
  USB Accelerator that is re-enumerating), later calls return a delegate whose Prepare claims no
  node, so the model runs on LiteRT's CPU kernels.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <unistd.h>
#include <fcntl.h>

struct edgetpu_device { int type; const char* path; };
static struct edgetpu_device devs[2] = {{1, "/sys/bus/usb/devices/2-1"}, {0, "/dev/apex_0"}};

const char* edgetpu_version(void) { return VERSION_STRING; }
struct edgetpu_device* edgetpu_list_devices(size_t* n) { *n = 2; return devs; }
void edgetpu_free_devices(struct edgetpu_device* d) { (void)d; }

static int prepare(void* context, void* delegate) { (void)context; (void)delegate; return 0; }

void* tflite_plugin_create_delegate(char** keys, char** values, size_t n, void (*report)(const char*)) {
  (void)keys; (void)values; (void)n; (void)report;
#ifdef ALWAYS_FAIL
  return 0;
#endif
#ifdef CRASH
  volatile int* p = 0;
  *p = 42;
  return 0;
#else
  const char* marker = getenv("FAKE_EDGETPU_MARKER");
  if (marker && access(marker, F_OK) != 0) {
    int fd = open(marker, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) close(fd);
    return 0;
  }
  void** d = calloc(32, sizeof(void*));   /* TfLiteDelegate: data_, Prepare, ... flags, builder */
  d[1] = (void*)prepare;
  return d;
#endif
}
void tflite_plugin_destroy_delegate(void* d) { free(d); }
"""

CRASH_VERSION = "BuildLabel(fake crash lib), RuntimeVersion(14)"
DUMMY_VERSION = "BuildLabel(dummy deb payload), RuntimeVersion(14)"
FLAKY_VERSION = "BuildLabel(fake flaky lib), RuntimeVersion(14)"


def have_gcc() -> bool:
    return shutil.which("gcc") is not None


def build(folder: Path, kind: str) -> Path:
    """Compile the ``crash``, ``flaky`` or ``dummy`` (always fails to make a delegate) library."""
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / "fake_libedgetpu.c"
    src.write_text(SOURCE, encoding="utf-8")
    out = folder / f"libedgetpu_{kind}.so.1"
    version = {"crash": CRASH_VERSION, "flaky": FLAKY_VERSION, "dummy": DUMMY_VERSION}[kind]
    cmd = ["gcc", "-shared", "-fPIC", "-O0", f'-DVERSION_STRING="{version}"', "-o", str(out), str(src)]
    if kind == "crash":
        cmd.insert(1, "-DCRASH")
    if kind == "dummy":
        cmd.insert(1, "-DALWAYS_FAIL")
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out
