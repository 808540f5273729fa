"""The three designs, named once: the module a user runs under uvicorn, the short name the
bench, the data generator and the results files use, and the label the app itself answers
in /health and /stats. Everything else looks a design up here instead of keeping its own
table of names."""

from dataclasses import dataclass
from typing import Literal

# What /health answers as "approach": one of these, as the contract's schema says.
Label = Literal["join-on-read", "fanout-on-write", "hybrid"]


@dataclass(frozen=True)
class Design:
    module: str  # `uvicorn MODULE:app`
    name: str  # results files, charts, `python -m bench --approaches`, datagen's caches
    label: Label  # what /health and /stats answer as "approach"
    fans_out: bool  # keeps home timelines in Redis (the caches datagen loads)


JOIN = Design("approach1", "join", "join-on-read", fans_out=False)
FANOUT = Design("approach2", "fanout", "fanout-on-write", fans_out=True)
HYBRID = Design("approach3_hybrid", "hybrid", "hybrid", fans_out=True)

DESIGNS = (JOIN, FANOUT, HYBRID)
MODULES = tuple(design.module for design in DESIGNS)
NAMES = tuple(design.name for design in DESIGNS)
LABELS = tuple(design.label for design in DESIGNS)
FANOUT_MODULES = tuple(design.module for design in DESIGNS if design.fans_out)
FANOUT_NAMES = tuple(design.name for design in DESIGNS if design.fans_out)


_BY_MODULE = {design.module: design for design in DESIGNS}
_BY_NAME = {design.name: design for design in DESIGNS}


def by_module(module: str) -> Design:
    """The design `uvicorn MODULE:app` runs; KeyError for any other module."""
    return _BY_MODULE[module]


def by_name(name: str) -> Design:
    """The design with this short name (join, fanout, hybrid); KeyError for any other."""
    return _BY_NAME[name]
