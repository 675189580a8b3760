"""The morning bulletin (DESIGN.md layer 8): one self-contained HTML page per cycle, built from
the cycle's files only (:mod:`.page`)."""

from .page import build_bulletin

__all__ = ["build_bulletin"]
