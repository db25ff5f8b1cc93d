"""meldpunt: hashing, hash lists and matching for hotlines and trust-and-safety teams."""

__version__ = "0.1.0"
