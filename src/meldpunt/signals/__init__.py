"""Content -> signals: exact hashes of every file, PDQ of images, vPDQ of videos.

``hash_file`` / ``hash_bytes`` hash one file; ``hash_files`` hashes many on every core. Bad input
never raises: it comes back as a :class:`Signals` record with ``error`` set. See ``image`` and
``video`` for how pixels are decoded and which frames are hashed, ``batch`` for the process pool.
"""

from meldpunt.signals.batch import hash_files
from meldpunt.signals.core import hash_bytes, hash_file
from meldpunt.signals.model import DIHEDRAL_ORDER, MediaKind, Signals
from meldpunt.signals.pdq import hamming

__all__ = ["DIHEDRAL_ORDER", "MediaKind", "Signals", "hamming", "hash_bytes", "hash_file", "hash_files"]
