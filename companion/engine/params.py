"""The engine's arbitration parameters, each with what it was measured to do (bench/results/engine.md)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EngineParams"]


@dataclass(frozen=True)
class EngineParams:
    """Arbitration parameters (times in seconds of input unless said otherwise).

    Parameters
    ----------
    identify_every_s : float
        Interval between identifier queries.
    horizon_s : float
        A query holds the notes of the last ``horizon_s`` seconds ...
    max_notes : int
        ... at most this many (the latest).
    track_horizon_s : float
        The horizon while tracking (the check for jumps): shorter than ``horizon_s``, so that a jump
        fills the window with new material sooner (on 15 dev splices of rendered ASAP performances,
        3 s instead of 5 s cut the median recovery after forward/backward jumps from ~4.5 s to ~3 s).
    sparse_notes, sparse_horizon_s : int, float
        While searching, a query whose horizon holds fewer than ``sparse_notes`` notes (slow music)
        reaches back up to ``sparse_horizon_s`` for the last ``sparse_notes``: 5 s of an Adagio hold
        too few notes to identify (issue 2's benchmark: half of the 5 s excerpts with < 15 notes are).
        On the disjoint tuning subset (``engine_bench --offset 0.5 --parts follow``, 8 one-minute runs
        per soundfont) 0 / 20 / 30 / 40 notes gave 79.4 / 81.6 / 81.6 / 81.6 % (timgm6mb) and 57.7 /
        58.9 / 65.4 / 65.4 % (fluidr3mono) of the notes in the right bar; a 15 s reach, 63.8 %.
    min_notes : int
        No query with fewer notes.
    min_new_notes : int
        No query unless this many notes arrived since the last one (silence costs nothing).
    seed_confidence : float
        While searching, a hypothesis this confident ...
    seed_margin : float
        ... and this far ahead of any hypothesis elsewhere seeds the tracker at once.
    confirm_confidence : float
        While searching, two consecutive agreeing hypotheses at least this confident seed it too.
    confirm_slack : float
        While searching, the identifier is also asked for hypotheses up to this much below its own
        rejection threshold; such a hypothesis never seeds alone (``clear`` needs a sure one), only
        when the next query agrees with it. Off by default: on the disjoint tuning subset (8
        one-minute runs and 8 splices of each kind per soundfont) 0.05 raised the notes in the right
        bar from 81.6 / 65.4 % to 82.2 / 66.2 % (timgm6mb / fluidr3mono), cut the median time to the
        first right bar on fluidr3mono from 7.4 to 6.5 s and seeded no more 30 s runs of pieces left
        out of the index; but on the reported set (bench/results/engine.md) its gains were within
        noise (75.1 / 65.5 -> 75.9 / 67.2 %) while 30 s runs of unknown pieces showed a piece for
        5.3 / 9.1 % of their positions instead of 1.3 / 6.4 %: two consecutive queries share most of
        their notes, so their agreement is weaker evidence than it looks.
    track_slack : float
        The same while tracking (for the checking queries; disagreeing hypotheses must still agree
        twice in a row). Off: on the tuning subset 0.1 cut the median recovery after a piece change
        from 5.6 to 4.8 s (timgm6mb) and 7.9 to 4.3 s (fluidr3mono), but its extra re-seeds into
        recurring passages cost 1.3 / 0.5 points of the notes in the right bar over 16 one-minute
        runs per soundfont (72.9 -> 71.6 %, 67.0 -> 66.5 %).
    piece_slack : float
        Piece mode: hypotheses up to this much below the identifier's rejection threshold count as
        sure. That threshold is set to reject pieces that are not in the database; with the piece
        known, only the place is asked, and a place still needs a clear hypothesis or two agreeing
        queries. On the disjoint tuning subset (``engine_bench --offset 0.5 --parts piece``, 8
        one-minute runs and 8 splices of each kind per soundfont) 0 / 0.05 / 0.1 / 0.2 / 0.3 gave 82.9 /
        85.4 / 87.0 / 87.0 / 87.0 % (timgm6mb) and 62.3 / 66.5 / 66.3 / 66.1 / 66.8 % (fluidr3mono) of
        the notes in the right bar, a first right bar after 3.0 / 2.35 / 2.35 / 2.35 / 2.35 s and 10.0
        / 4.0 / 6.7 / 6.4 / 6.4 s, and a median recovery after a jump 20 bars back of 5.2 / 4.7 / 4.8 /
        3.8 / 3.8 s and 5.0 / 4.2 / 3.6 / 3.5 / 3.5 s.
    agree_tolerance_s : float
        Score seconds within which two positions (hypothesis vs tracker, or two hypotheses extrapolated
        to the same time) count as the same place (1.5 s recovered from backward jumps faster than 3 s
        on dev performances outside the benchmark's, and changed nothing else there).
    ambiguity_margin : float
        A hypothesis at the tracker's place that is within this of the best one counts as agreement
        (repeated passages: the identifier cannot tell them apart, the tracker's context can).
    check_tracker : bool
        Audio, while tracking: when a query's hypotheses do not include the tracker's place, the
        identifier verifies that place with the same notes
        (:meth:`~companion.fingerprint.identify.Identifier.check`); if it passes and is about as good as
        the best (``check_margin``), the query agrees with the tracker. Where the same notes recur,
        the vote often keeps only one of the places, and two such queries pulled a tracker that was
        right to the other occurrence (Chopin's Scherzo op. 31, whose repeat holds the same notes 102
        bars on). On the disjoint tuning subsets (``engine_bench --offset 0.5`` and ``0.25``, ``--parts
        follow splice unknown``, 8 one-minute runs and 8 splices of each kind per soundfont) the notes
        in the right bar rose from 89.0 / 66.7 % to 89.1 / 74.7 % and from 86.7 / 65.8 % to 88.1 /
        73.0 % (timgm6mb / fluidr3mono); one backward splice was no longer recovered on timgm6mb, at a
        passage that recurs note for note (the Waldstein rondo's theme, bars 14 and 127), where either
        occurrence is a guess; the rest unchanged. MIDI input does not use it (its place comes from the
        notes themselves, :class:`~companion.engine.midi.NoteFollower`).
    check_margin : float
        ... within this of the best hypothesis' confidence. The check refines the place near the
        tracker's, so a tracker a beat or a bar off can borrow the right place's notes: with
        ``ambiguity_margin`` (0.1) it kept a tracker a bar behind in a slow movement (op. 2/3 ii) for
        3 s and lost a coin flip at op. 10/12's recurring opening (bars 3 and 43) on the tuning
        subsets; 0.03 keeps the recurrences (their confidences tie exactly) and not those.
    reseed_confidence : float
        While tracking, only hypotheses at least this confident count as disagreement.
    reseed_after : int
        Consecutive, mutually consistent disagreeing queries before the tracker is re-seeded.
    top_k : int
        Hypotheses asked of the identifier per query.
    pause_s : float
        MIDI: the extrapolated position stops this long after the last note.
    midi_lost_s : float
        MIDI: "lost" after this long of notes with no agreeing hypothesis.
    midi_next_bar : bool
        MIDI: show the bar of the next score note to play (after the last note matched), and never
        move the position past that note before it is played, rather than the bar of the position
        extrapolated at the tempo (the notes of a bar's end are otherwise shown in the next bar
        whenever the extrapolation runs ahead). With it (and with supporting queries setting the
        position, :meth:`Engine._arbitrate`) the notes in the right bar over 16 one-minute runs of MIDI
        input rose from 85.6 to 87.8 % (``engine_bench --midi``; 71.2 -> 75.1 % on the disjoint
        ``--offset 0.5`` set; bench/results/midi.md).
    midi_chord_s : float
        MIDI: score onsets this close are one chord; its notes count as played with the first one
        once this long has passed since it (until then the chord's own bar stays on show: its notes
        arrive spread over some tens of milliseconds, possibly in two blocks).
    midi_start : bool
        MIDI, piece mode: start at the piece's first note (the position waits there until a played
        note matches), as audio piece mode starts its tracker; otherwise search first, as the
        whole-database engine does. From the start of a piece (``midi_follow_bench``, the tracking
        benchmark's held-out set) 60.1 -> 89.8 % of the notes in the right bar: a first query that
        lands in a written-out da capo or a sequence is no longer taken at once; the identifier still
        re-seeds a player who starts elsewhere.
    midi_rivals, midi_rival_margin : bool, float
        MIDI: a seed chosen among places of the piece that the identifier ranks exactly alike (a
        theme and its recapitulation: the same notes) keeps the others as rivals, and the first query
        that ranks one of them ``midi_rival_margin`` above the tracker's place moves the tracker there
        at once (instead of two disagreeing queries after the margin of ``ambiguity_margin``; one that
        ranks the tracker's place that far above them ends the doubt). From the start of a piece
        (``midi_follow_bench``, held-out set) the whole-database engine went from 81.3 to 86.1 % of the
        notes in the right bar; from random starts (``engine_bench --midi``) 87.7 -> 87.9 % and, on the
        disjoint ``--offset 0.5`` set, 75.1 -> 79.4 %. Not for audio: its confidences are too noisy for
        such a margin (tuning subset, fluidr3mono: a switch to the other occurrence on a 0.07 lead 0.5 s
        after the seed; the minute 65.2 -> 64.9 %, a backward splice never recovered).
    display_lead_s : float
        The tracker's position is shown this far ahead (audio seconds at its tempo) while notes sound:
        the online DTW moves to a new chord only once some frames of it have arrived (for MIDI: the
        extrapolated position, which is otherwise updated only once per block). 0.1 s raised the
        share of notes shown in the right bar from 0.67 to 0.89 on a fast movement (Beethoven op. 10/1,
        bars of ~0.8 s) and changed nothing on a slow one (op. 13/1); 0.2 s and 0.3 s were worse.
        Audio uses it only without ``tracker_display``.
    tracker_display : bool
        Audio: show the tracker's own bar (the bar of the next score onset, held while the note just
        crossed has not been heard: :class:`~companion.tracking.oltw.TrackerParams`) rather than the
        bar of its position carried ``display_lead_s`` ahead. Piece mode always does. On the tuning
        subset (``--offset 0.5``, 8 one-minute runs, 8 splices of each kind per soundfont) it raised
        the notes in the right bar from 82.0 to 86.0 % (timgm6mb) and 66.3 to 68.4 % (fluidr3mono), the
        median recovery after a backward jump from 7.1 to 6.7 s and 5.7 to 5.1 s, the rest equal.
        (Measured before the tracker's display hold, and with 12-bin chroma, it had lost 1.4-9.5
        points.)
    lost_grace_s : float
        After the tracker says "lost", its position stays on show this long (input seconds since that
        or since the last agreeing query), if a query has agreed with it since it was seeded; a
        tracker never confirmed by the identifier (a wrong seed) is given up at once. On the tuning
        subset (16 one-minute runs) 5 s cut the notes shown while "lost" from 5.7 % to 1.9 %.
    prefer_near : bool
        Re-seed at the hypothesis nearest the tracker among those within ``ambiguity_margin`` of the
        best (otherwise at the best) ...
    near_s : float
        ... if it is within this many score seconds of the tracker (a slip; farther, the nearest
        occurrence is no likelier than the best ranked one). On 16 one-minute runs of a disjoint
        tuning subset (``engine_bench --offset 0.5``) the preference raised the notes shown in the right
        bar from 61.5 % to 67.1 % (a da capo written out: Beethoven op. 31/2 iii); 30 s kept that
        (72.3 % vs 72.1 % without a limit, after tracker changes) and recovered one more forward
        splice of 12, 10 s lost 2 points of the minute.
    """

    identify_every_s: float = 0.5
    horizon_s: float = 5.0
    max_notes: int = 80
    track_horizon_s: float = 3.0
    min_notes: int = 8
    sparse_notes: int = 30
    sparse_horizon_s: float = 10.0
    min_new_notes: int = 2
    confirm_slack: float = 0.0
    track_slack: float = 0.0
    seed_confidence: float = 0.6
    seed_margin: float = 0.1
    confirm_confidence: float = 0.5
    piece_slack: float = 0.2
    agree_tolerance_s: float = 1.5
    ambiguity_margin: float = 0.1
    check_tracker: bool = True
    check_margin: float = 0.03
    reseed_confidence: float = 0.55
    reseed_after: int = 2
    top_k: int = 5
    pause_s: float = 1.0
    midi_lost_s: float = 4.0
    display_lead_s: float = 0.1
    midi_next_bar: bool = True
    midi_start: bool = True
    midi_rivals: bool = True
    midi_rival_margin: float = 0.03
    midi_chord_s: float = 0.05
    tracker_display: bool = True
    lost_grace_s: float = 5.0
    prefer_near: bool = True
    near_s: float = 30.0

