"""Re-export of :mod:`tritondiv.dataset` (the dataset folder's owner), kept for old imports."""

from tritondiv.dataset import (
    DATA_FILE,
    MANIFEST_FILE,
    MANIFEST_VERSION,
    jsonable,
    read_manifest,
    verify_dataset,
    versions,
    write_dataset,
)

__all__ = [
    "DATA_FILE",
    "MANIFEST_FILE",
    "MANIFEST_VERSION",
    "jsonable",
    "read_manifest",
    "verify_dataset",
    "versions",
    "write_dataset",
]
