"""The data room: the data model (boxes, annotations), the SQLite store, import/export formats,
labeling, splits, sources, imaging, snapshots, demo data, settings and model artefacts on disk.
Imports only the standard library, numpy/PIL and core.data/core.config; never jobs, training or anything above core.
"""
