"""One module per annotation format: pure parse (from a Source) and serialise.

Each format module exposes:
    NAME: str                                  e.g. "voc"
    TASKS: tuple[str, ...]                     tasks it can carry
    def detect(source: Source) -> float        confidence 0..1 that the source is this format
    def parse(source: Source) -> ParseResult   never raises for bad items: records Issues
    def export(items: Sequence[ExportItem], classes: Sequence[str], out_dir: Path) -> list[Path]
"""
