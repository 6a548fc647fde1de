"""The companion engine: identify the piece while listening, then follow it, re-identify after jumps.

One plain object (:class:`Engine`, no threads, :mod:`companion.engine.core`) joins the stages of
DESIGN.md §1:

* **Analysis** (:meth:`Engine.analyse`): one :class:`~companion.transcription.features.IncrementalFeatures`
  (owned by the :class:`~companion.transcription.transcriber.Transcriber`) computes each STFT frame
  once; the transcriber turns the frames into notes and the same 2048-window spectrum
  (``Transcriber.last_features.spec``) feeds the tracker's chroma, its note activations
  (``Transcriber.last_activations``) the tracker's onset feature. MIDI input
  (:class:`NoteBlock`) skips this: its notes go straight to the identifier.
* **Arbitration** (:meth:`Engine.decide`): every ``identify_every_s`` seconds of input, the
  :class:`~companion.fingerprint.identify.Identifier` looks at the notes of the last ``horizon_s``
  seconds (at most ``max_notes``).

  - *Searching*: a hypothesis seeds the tracker when it is clearly ahead (confidence
    ``>= seed_confidence`` and no hypothesis elsewhere within ``seed_margin``), or when two queries in
    a row agree on it (same piece, positions consistent with the time between them).
  - *Tracking*: the identifier keeps checking. A query agrees with the tracker when one of its
    hypotheses within ``agree_tolerance_s`` score seconds of the tracker's position is (nearly) as
    good as the best. When ``reseed_after`` queries in a row disagree, and agree with each other, the
    tracker is re-seeded there (another bar far away, another piece, a restart).
  - *Re-seeding* goes to the best hypothesis or, of those about as good, to the one nearest the
    tracker's position: where a passage recurs (a da capo written out, a recapitulation) the
    identifier ranks its occurrences alike, and a slip of a few bars is far more likely than a jump.
  - *Lost*: when the tracker's confidence collapses (its own "lost" state), a recent confident answer
    of the identifier elsewhere re-seeds there at once. Otherwise the engine keeps showing the
    tracker's position (its confidence is often low where it is right: slow movements, a soundfont
    unlike the score's chroma) for ``lost_grace_s`` more, or as long as the identifier keeps agreeing
    with it, provided a query has agreed with it since its seed; then it reports "lost" (keeping the
    last position on show) and searches again.
  - *Silence* does not move the tracker (silent frames are skipped) and gives the identifier no new
    notes, so it neither loses nor changes the position.

* **MIDI** (notes only): there is no audio to track, so the position between queries is the last
  agreeing hypothesis extrapolated at its tempo, frozen once no note has come for ``pause_s``. It is
  a follower by repeated identification: simple, and only as good as the identifier.

:meth:`Engine.process` (= ``decide(analyse(block))``) returns one :class:`ScorePosition` per block,
at the block's end on the sample clock. The threaded pipeline (:mod:`companion.pipeline`) runs
``analyse`` and ``decide`` in two stage threads; the results are the same as the synchronous
:func:`companion.pipeline.run_offline`.

The package: :mod:`~companion.engine.core` (the :class:`Engine`), :mod:`~companion.engine.params`
(:class:`EngineParams`, with what each was measured to do), :mod:`~companion.engine.model` (what
passes between the stages: blocks, analyses, the identifier's hypotheses; the score axis) and
:mod:`~companion.engine.midi` (the position between answers for MIDI input).

References
----------
A. Arzt, S. Böck, S. Flossmann, H. Frostel, M. Gasser and G. Widmer, "The Complete Classical Music
Companion V0.9", AES 53rd Conference on Semantic Audio, 2014 (the arbitration this follows).
"""

from companion.engine.core import FPS, LOST, SAMPLE_RATE, SEARCHING, TRACKING, Engine
from companion.engine.model import Analysis, Hypothesis, NoteBlock, score_axis
from companion.engine.params import EngineParams

__all__ = ["EngineParams", "Engine", "NoteBlock", "Analysis", "Hypothesis", "SAMPLE_RATE", "FPS", "SEARCHING",
           "TRACKING", "LOST", "score_axis"]
