"""Benchmarks (`make bench`): each module exposes ``run(out_dir: Path, quick: bool) -> dict``."""
