"""Benign demo media (generated landscapes and patterns, a short video) and demo hash lists."""

from pathlib import Path

DEMO_DIR = Path(__file__).parent
MEDIA = DEMO_DIR / "media"
KNOWN_LIST = DEMO_DIR / "demo-known.csv"
BENIGN_LIST = DEMO_DIR / "demo-benign.te"
