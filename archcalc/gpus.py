"""The GPU catalogue (archcalc/gpus.yaml): name, memory, bandwidth, peak throughput per dtype.

Data, not code: a card is added by adding an entry (with its datasheet as ``source``). ``--memory
24GiB`` stands for any card not listed."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .units import parse_bytes


@dataclass(frozen=True)
class GPU:
    name: str
    title: str
    memory: int  # bytes
    bandwidth: float  # GB/s
    tflops: dict  # dtype -> peak dense TFLOP/s
    source: str


@lru_cache(maxsize=1)
def catalogue() -> dict[str, GPU]:
    import yaml

    data = yaml.safe_load((Path(__file__).parent / "gpus.yaml").read_text(encoding="utf-8"))
    return {g["name"]: GPU(g["name"], g["title"], parse_bytes(str(g["memory"])), float(g["bandwidth"]),
                           {k: float(v) for k, v in g["tflops"].items()}, g["source"]) for g in data["gpus"]}


def find(name: str) -> GPU:
    """A card by name (case and - / _ insensitive); ValueError naming the known ones."""
    gpus = catalogue()
    key = name.lower().replace("_", "-")
    if key in gpus:
        return gpus[key]
    matches = [g for n, g in gpus.items() if n.replace("-", "") == key.replace("-", "")]
    if len(matches) == 1:
        return matches[0]
    raise ValueError(f"unknown GPU {name!r}; known: {', '.join(gpus)} (or --memory SIZE)")
