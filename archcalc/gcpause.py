"""Pausing the cyclic garbage collector while a large acyclic structure is built."""
from __future__ import annotations

import gc


class gc_paused:
    """Pause the cyclic GC while many acyclic objects are built (a parsed spec, a report's rows,
    the JSON model): its full passes would re-walk everything built so far, which made a
    100,000-layer spec about twice as slow and its to_dict four times. Cycles made meanwhile are
    collected afterwards; the GC stays off if the caller had it off."""

    def __enter__(self):
        self.was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc):
        if self.was_enabled:
            gc.enable()
