"""Run the benchmarks and write bench-output/report.json and report.md.

Every figure that is compared with another (ratios) is measured in the same run,
on the same machine state, because this machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import time
import traceback
from pathlib import Path

MODULES = ("bench_import", "bench_classification", "bench_detection", "bench_app_training", "bench_preview",
           "bench_builder", "bench_ray", "bench_devices", "bench_continue")


def _markdown(report: dict) -> str:
    lines = ["# Benchmark report", "", f"- date: {report['date']}", f"- machine: {report['machine']}", ""]
    for name, res in report["results"].items():
        lines += [f"## {name}", ""]
        if "error" in res:
            lines += [f"**failed**: {res['error']}", ""]
            continue
        lines += ["| figure | value |", "| --- | --- |"]
        for k, v in res.items():
            if isinstance(v, float):
                v = f"{v:.4g}"
            lines.append(f"| {k} | {v} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("--only", nargs="*", help="benchmark modules to run (default: all)")
    ap.add_argument("--quick", action="store_true", help="small sizes, to check the benchmarks run")
    ap.add_argument("--out", default="bench-output")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "quick": args.quick,
              "machine": f"{platform.machine()} {platform.processor() or ''} python {platform.python_version()}",
              "results": {}}
    for name in args.only or MODULES:
        try:
            mod = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bench.{name}":
                continue
            raise
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            res = mod.run(out / name, quick=args.quick)
        except Exception as exc:  # noqa: BLE001 - one failing bench must not hide the others
            traceback.print_exc()
            res = {"error": f"{type(exc).__name__}: {exc}"}
        res["bench_seconds"] = round(time.perf_counter() - t0, 1)
        report["results"][name] = res
        print(json.dumps(res, indent=2, default=str), flush=True)
        (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
        (out / "report.md").write_text(_markdown(report))
    print(f"report: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
