"""Where the reference data lives (``../shared`` next to the project), for tests and benchmarks."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """``../shared`` from the project root (or the nearest ancestor's ``shared``)."""
    if os.environ.get("WEINTERVENE_SHARED_DIR"):
        return Path(os.environ["WEINTERVENE_SHARED_DIR"])
    for parent in ROOT.parents:
        candidate = parent / "shared"
        if (candidate / "datasets").is_dir():
            return candidate
    raise RuntimeError("../shared (reference datasets and HSDS spec) not found; set WEINTERVENE_SHARED_DIR")


def dataset(name: str) -> Path:
    return shared_dir() / "datasets" / name


def hsds_spec(version: str = "3.0") -> Path:
    """The HSDS spec folder of ``version`` ("3.0" or "3.1": the API is served as 3.1)."""
    return shared_dir() / "hsds" / f"spec-{version}"
