"""What a service process does with the garbage collector once it has started."""
from __future__ import annotations

import gc

from weintervene.runner import freeze_startup_objects


def test_start_up_objects_are_left_out_of_full_collections():
    threshold = gc.get_threshold()
    gc.unfreeze()
    kept = [[n] for n in range(1000)]  # long-lived, like a service's schemas and mappers
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() >= len(kept)
        assert gc.get_threshold()[0] == 10_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
