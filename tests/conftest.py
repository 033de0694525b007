"""Shared test helpers: where the shared corpus lives, and how to skip without it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
CALLBACKS = CORPUS / "callbacks"
QUERY = CORPUS / "query"
SCF_EVENTS = CORPUS / "scf-events"
EVENTS = ROOT / "events"

# Tests import the package from handler/, exactly as SCF does (code root on the path).
if str(ROOT / "handler") not in sys.path:
    sys.path.insert(0, str(ROOT / "handler"))

needs_corpus = pytest.mark.skipif(
    not CALLBACKS.is_dir(), reason="../shared/corpus is not beside the project root; corpus tests need it"
)


def corpus_file(name: str) -> bytes:
    path = CALLBACKS / name
    if not path.exists():
        pytest.skip(f"corpus sample {name} not found under {CALLBACKS}")
    return path.read_bytes()
