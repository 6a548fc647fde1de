"""companion: the Piano Music Companion.

Identifies the piece a pianist plays from note-triplet fingerprints (Arzt, Böck & Widmer, ISMIR 2012),
follows it with an online chroma DTW (Dixon, DAFx 2005) and shows the score with the current bar.

The core (everything outside :mod:`companion.gui`) never imports Qt.
"""

__version__ = "0.1.0"
