"""The domain: plain types and rules shared by every room of meldpunt. Imports nothing of ours."""

from meldpunt.domain.labels import LabelError, Labels
from meldpunt.domain.signals import (
    EXACT_SIGNAL_TYPES,
    MATCHABLE_SIGNAL_TYPES,
    InvalidSignal,
    SignalType,
    VpdqFrame,
    detect_signal_type,
    normalise_signal,
    parse_vpdq,
    serialise_vpdq,
)

__all__ = [
    "EXACT_SIGNAL_TYPES",
    "MATCHABLE_SIGNAL_TYPES",
    "InvalidSignal",
    "LabelError",
    "Labels",
    "SignalType",
    "VpdqFrame",
    "detect_signal_type",
    "normalise_signal",
    "parse_vpdq",
    "serialise_vpdq",
]
