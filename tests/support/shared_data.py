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


def hsds_spec() -> Path:
    return shared_dir() / "hsds" / "spec-3.0"
