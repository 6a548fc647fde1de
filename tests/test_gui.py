"""The window, offscreen: a scripted position stream moves the bar highlight and turns pages; errors are
messages; and, under Xvfb, a screenshot of an ASAP excerpt shows the highlight on the ground-truth bar."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before Qt is imported

import json
import queue
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from companion.gui.app import make_app  # noqa: E402
from companion.gui.settings import Settings  # noqa: E402
from companion.gui.window import MainWindow  # noqa: E402
from companion.gui.worker import FollowWorker, LatestQueue, level_dbfs  # noqa: E402
from companion.score.load import load_score  # noqa: E402
from companion.score.pageturn import pages_to_show  # noqa: E402

#: ``companion gui`` as the user runs it
COMPANION_GUI = [sys.executable, "-m", "companion.cli", "gui"]


def _corpus(name: str) -> Path:
    import music21

    p = Path(music21.__file__).parent / "corpus" / name
    if not p.is_file():
        pytest.skip(f"music21's corpus has no {name}")
    return p


@pytest.fixture(scope="module")
def app():
    return make_app()


@pytest.fixture(scope="module")
def bach():
    return load_score(_corpus("bach/bwv846.mxl"))


@pytest.fixture
def window(app, tmp_path):
    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(Settings(store), interactive=False, animate_ms=0)
    w.view.set_pages_per_view(1)
    w.resize(1000, 640)
    w.show()
    app.processEvents()
    yield w
    w.bridge.stop()
    w.close()


def _positions(piece, bars) -> list[dict]:
    return [{"t": 0.5 * i, "state": "tracking", "source": piece.meta.source, "measure": str(piece.bars["number"][b]),
             "measure_offset": 0.5, "score_quarters": float(piece.bars["start_quarters"][b]) + 0.5, "tempo": 1.0,
             "confidence": 0.9} for i, b in enumerate(bars)]


def _run(window, positions, timeout_ms: int = 20000) -> None:
    loop = QEventLoop()
    window.bridge.finished.connect(lambda _n: QTimer.singleShot(0, loop.quit))
    QTimer.singleShot(timeout_ms, loop.quit)
    window.follow_positions(iter(positions))
    loop.exec()
    window.bridge.drain()


# ------------------------------------------------------------------------------------- pure pieces
def test_latest_queue_keeps_only_the_newest():
    q = LatestQueue()
    assert q.take() is None
    for i in range(5):
        q.put(i)
    assert q.take() == 4 and q.take() is None and q.overwritten == 4


def test_worker_reports_errors_as_messages():
    q, events = LatestQueue(), queue.Queue()

    def broken(stop):
        yield {"t": 0.1}
        raise ValueError("the input ended in the middle of a block")

    w = FollowWorker(broken, positions=q, events=events)
    w.start()
    w.join(5)
    assert q.take() == {"t": 0.1}
    assert events.get_nowait() == ("error", "the input ended in the middle of a block")
    assert events.get_nowait() == ("finished", 1)
    assert level_dbfs(np.zeros(100, np.float32)) == -120.0
    assert abs(level_dbfs(np.full(100, 0.5, np.float32)) - 20 * np.log10(0.5)) < 1e-6


def test_stopping_unblocks_an_input_that_waits(app):
    """A MIDI port with no notes blocks its reader; stopping the job closes it through ``on_stop``."""
    import threading

    from companion.gui.bridge import Bridge

    closed = threading.Event()

    def waiting(stop):
        yield {"t": 0.0}
        closed.wait(30)  # like MidiSource waiting for the next note until it is closed

    bridge = Bridge()
    bridge.start(waiting, on_stop=closed.set)
    time.sleep(0.05)
    bridge.stop(timeout_s=10)
    assert closed.is_set() and bridge.worker is None


# ---------------------------------------------------------------------------------- scripted stream
def test_scripted_stream_moves_highlight_and_turns_pages(window, bach, app):
    window.open_score(bach)
    view = window.view
    r = view.renderer
    assert r.n_pages >= 3, "the test needs a score of several pages at this window size"
    assert view.view_pages == (0,)
    view_before = view.view_pages
    for pos in _positions(bach, range(len(bach.bars))):  # synchronous: every position is shown
        window.on_position(pos)
        app.processEvents()
        bar = bach.bar_at(pos["score_quarters"])
        mid = str(bach.bars["measure_id"][bar])
        assert view.highlighted_id == mid
        expected = pages_to_show(r, mid, 1, view_before)
        assert view.view_pages == expected
        page, system = r.locate(mid)
        if system == r.systems_on_page(page) - 1 and page + 1 < r.n_pages:
            assert view.view_pages == (page + 1,)  # turned ahead on the page's last system
        else:
            assert view.view_pages == (page,)
            rect = view.highlight_rect()  # drawn over the bar, inside the shown page
            assert rect.isValid() and view.page_rect(0).contains(rect.center())
            assert rect == view.bar_rect(mid)
        view_before = view.view_pages
    assert window.bar_label.text() == f"bar {bach.bars['number'][-1]}"
    assert window.state == "tracking"


def test_threaded_stream_two_pages(window, bach, app):
    window.set_pages_per_view(2)
    window.open_score(bach)
    view = window.view
    r = view.renderer
    target = len(bach.bars) * 2 // 3
    _run(window, _positions(bach, range(target + 1)))
    mid = str(bach.bars["measure_id"][target])
    assert view.highlighted_id == mid  # the last position always arrives (keep-latest queue)
    page, _ = r.locate(mid)
    assert page in view.view_pages and len(view.view_pages) == 2
    assert view.view_pages == pages_to_show(r, mid, 2, view.view_pages)
    assert window.settings.pages_per_view == 2


def test_keys_turn_pages_and_hold_until_the_player_moves_on(window, bach, app):
    window.open_score(bach)
    view = window.view
    r = view.renderer
    window.on_position(_positions(bach, [0])[0])
    assert view.view_pages == (0,)
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_PageDown)
    assert view.view_pages == (1,)
    QTest.keyClick(view, Qt.Key.Key_Right)
    assert view.view_pages == (2,)
    QTest.keyClick(view, Qt.Key.Key_PageUp)
    assert view.view_pages == (1,)
    first_system = r.page_systems(0)[0]
    same = [b for b in range(len(bach.bars)) if bach.bars["measure_id"][b] in first_system]
    window.on_position(_positions(bach, [same[-1]])[0])  # still in the same system: the manual view holds
    assert view.view_pages == (1,)
    second = r.page_systems(0)[1][0]
    b2 = int(np.flatnonzero(bach.bars["measure_id"] == second)[0])
    window.on_position(_positions(bach, [b2])[0])  # moved on: automatic turning resumes
    assert view.view_pages == (0,)


def test_resize_relayouts_and_keeps_the_bar(window, bach, app):
    window.open_score(bach)
    view = window.view
    b = len(bach.bars) // 2
    window.on_position(_positions(bach, [b])[0])
    n_before = view.renderer.n_pages
    window.resize(1500, 1000)
    app.processEvents()
    view.flush_layout()
    assert view.renderer.geometry.height_px > 600
    assert view.renderer.n_pages < n_before
    mid = str(bach.bars["measure_id"][b])
    assert view.highlighted_id == mid
    assert view.renderer.locate(mid)[0] in view.view_pages


def test_errors_are_messages_not_tracebacks(window, bach, tmp_path, app):
    assert window.follow_file(str(tmp_path / "none.wav")) is False  # no piece yet
    assert "Pick the piece" in window.errors[-1]
    window.open_score(bach)
    assert window.follow_file(str(tmp_path / "none.wav")) is False
    assert "none.wav" in window.errors[-1]
    assert window.open_database(tmp_path / "no_db") is False
    assert "no database" in window.errors[-1]
    bad = tmp_path / "broken.mxl"
    bad.write_bytes(b"PK\x03\x04 truncated")
    piece = bach.__class__(meta=bach.meta.__class__(str(bad), "broken", ""), notes=bach.notes, bars=bach.bars)
    assert window.open_score(piece) is False
    assert "broken.mxl" in window.errors[-1]
    assert window.view.renderer is None  # nothing half-shown


def test_library_lists_searches_and_opens(window, tmp_path, app):
    from companion.db import build_database

    db = tmp_path / "db"
    report = build_database(db, [_corpus("bach/bwv846.mxl"), _corpus("schoenberg/opus19/movement2.mxl")])
    assert not report.failed
    assert window.open_database(db)
    lib = window.library
    assert lib.list.count() == 2 and lib.count.text() == "2 pieces"
    lib.search.setText("schoenberg")
    visible = lib.visible_pids()
    assert len(visible) == 1 and "opus19" in window.db.metas[visible[0]].source
    item = next(lib.list.item(i) for i in range(lib.list.count()) if not lib.list.item(i).isHidden())
    lib.list.itemClicked.emit(item)
    assert window.piece is not None and "opus19" in window.piece.meta.source
    assert window.view.renderer is not None and window.view.view_pages == (0,)
    assert window.settings.db == str(db.resolve()) and window.settings.last_piece == window.piece.meta.source


def test_lost_greys_the_highlight_and_keeps_it(window, bach, app):
    window.open_score(bach)
    window.on_position(_positions(bach, [3])[0])
    assert not window.view.dimmed
    lost = dict(_positions(bach, [9])[0], state="lost")
    window.on_position(lost)
    assert window.view.dimmed and window.state == "lost"
    assert window.view.highlighted_id == str(bach.bars["measure_id"][3])  # not moved by a lost position


def test_settings_are_restored(app, tmp_path, bach):
    path = str(tmp_path / "s.ini")
    w = MainWindow(Settings(QSettings(path, QSettings.Format.IniFormat)), interactive=False)
    w.set_pages_per_view(1)
    w.set_zoom(50.0)
    w.settings.sync()
    w.close()
    w2 = MainWindow(Settings(QSettings(path, QSettings.Format.IniFormat)), interactive=False)
    assert w2.view.pages_per_view == 1 and abs(w2.view.zoom - 50.0) < 1e-6
    w2.close()


def test_add_scores_runs_in_a_thread_and_reports_failures(window, tmp_path, app):
    from companion.db import build_database

    db = tmp_path / "db"
    build_database(db, [_corpus("schoenberg/opus19/movement2.mxl")])
    assert window.open_database(db) and window.library.list.count() == 1
    bad = tmp_path / "broken.musicxml"
    bad.write_text("<score-partwise><part-list></part-list>")  # not a readable score
    loop = QEventLoop()
    window.library.databaseChanged.connect(lambda: QTimer.singleShot(0, loop.quit))
    QTimer.singleShot(60000, loop.quit)
    window.library.add_scores([str(_corpus("schoenberg/opus19/movement6.mxl")), str(bad)])
    assert not window.library.add.isEnabled()  # the GUI thread did not wait for the build
    loop.exec()
    app.processEvents()
    assert window.library.list.count() == 2
    assert any("broken.musicxml" in e for e in window.errors)
    assert window.library.add.isEnabled() and not window.library.progress.isVisible()


def test_cli_checks_its_arguments(tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    out = subprocess.run(COMPANION_GUI + ["--screenshot", str(tmp_path / "x.png")], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--input" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run(COMPANION_GUI + ["--db", str(tmp_path / "none"), "--piece",
                          str(tmp_path / "missing.mxl"), "--input", str(tmp_path / "a.wav"), "--screenshot",
                          str(tmp_path / "x.png")], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "missing.mxl" in out.stderr and "Traceback" not in out.stderr
    headless = {k: v for k, v in env.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out = subprocess.run(COMPANION_GUI + ["--db", str(tmp_path / "none")], env=headless,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "no display" in out.stderr and "Traceback" not in out.stderr


def test_missing_input_device_is_a_message(window, bach, app):
    window.open_score(bach)
    loop = QEventLoop()
    window.bridge.finished.connect(lambda _n: QTimer.singleShot(0, loop.quit))
    QTimer.singleShot(20000, loop.quit)
    assert window.follow_device("no-such-device-xyz")  # the device is opened in the worker thread
    loop.exec()
    app.processEvents()
    assert any("no-such-device-xyz" in e for e in window.errors), window.errors
    assert not window.bridge.running and window.start_action.text().endswith("Follow")


def test_file_playback_without_output_device_follows_silently(window, bach, tmp_path, app):
    import soundfile as sf

    from companion.gui.worker import AudioPlayer

    player = AudioPlayer(np.zeros(4410, np.float32), 44100)
    started = player.start()
    player.stop()
    if started:
        pytest.skip("this machine has an audio output device")
    assert "following silently" in player.error
    wav = tmp_path / "silence.wav"
    sf.write(str(wav), np.zeros(44100, np.float32), 44100)
    window.open_score(bach)
    infos: list[str] = []
    window.bridge.info.connect(infos.append)
    loop = QEventLoop()
    window.bridge.finished.connect(lambda _n: QTimer.singleShot(0, loop.quit))
    QTimer.singleShot(30000, loop.quit)
    assert window.follow_file(str(wav), play=True, realtime=False)
    loop.exec()
    app.processEvents()
    assert any("following silently" in i for i in infos)
    assert "following silently" in window.info_label.text()


def _demo_bar_number(t: float) -> int:
    """Bar sounding at ``t`` in assets/demo.ogg (scripts/make_demo.py: BWV 846 from bar 5 at 0.5 s,
    4/4, 66..78 quarters per minute on a slow sine)."""
    grid = np.arange(0, 400, 0.25)
    bpm = 72.0 + 6.0 * np.sin(2 * np.pi * grid / 32.0)
    t_grid = np.concatenate([[0.0], np.cumsum(60.0 / bpm * 0.25)]) + 0.5
    q = float(np.interp(t, t_grid, np.arange(len(t_grid)) * 0.25))
    return 5 + int(q // 4)


def test_identifies_the_demo_then_follows_it(window, tmp_path, app):
    """No piece chosen: the engine identifies the demo recording while listening, the window opens the
    piece its positions name, and the highlight follows (to within a bar of the generator's tempo map)."""
    from companion.gui.window import identification_available

    if not identification_available():
        pytest.skip("the engine (identifier, transcriber) is not installed")
    from companion.db import build_database

    demo = Path(__file__).resolve().parents[1] / "assets" / "demo.ogg"
    db = tmp_path / "db"
    build_database(db, [_corpus("bach/bwv846.mxl"), _corpus("schoenberg/opus19/movement2.mxl")])
    assert window.open_database(db) and window.library.identify.isEnabled()
    assert window.piece is None
    loop = QEventLoop()
    window.bridge.finished.connect(lambda _n: QTimer.singleShot(0, loop.quit))
    QTimer.singleShot(60000, loop.quit)
    at = 18.0
    assert window.follow_file(str(demo), play=False, realtime=False, stop_at_s=at)
    loop.exec()
    app.processEvents()
    assert not window.errors, window.errors
    assert window.piece is not None and window.piece.meta.source.endswith("bwv846.mxl")
    assert window.library.list.currentItem().data(Qt.ItemDataRole.UserRole) == window.db.find("bwv846")
    pos = window.last_position
    assert pos["state"] == "tracking" and abs(pos["t"] - at) < 0.2
    bar = window.piece.bar_at(pos["score_quarters"])
    assert abs(int(window.piece.bars["number"][bar]) - _demo_bar_number(at)) <= 1
    assert window.view.highlighted_id == str(window.piece.bars["measure_id"][bar])


def test_follows_a_midi_performance(window, asap, app):
    """A MIDI file (as a MIDI keyboard would send it) is followed in the chosen piece (the engine's piece mode)."""
    from companion.bench.asap import load_alignment, performances
    from companion.bench.gui_bench import ground_truth_bar

    perfs = [p for p in performances(asap) if p.name.endswith("Beethoven/Piano_Sonatas/26-1/Broberg01")]
    if not perfs:
        pytest.skip("ASAP has no Broberg01 performance of Beethoven sonata no. 26 i")
    perf = perfs[0]
    piece = load_score(perf.score)
    window.open_score(piece)
    loop = QEventLoop()
    window.bridge.finished.connect(lambda _n: QTimer.singleShot(0, loop.quit))
    QTimer.singleShot(60000, loop.quit)
    at = 30.0
    assert window.follow_file(str(perf.midi), play=False, realtime=False, stop_at_s=at)
    loop.exec()
    app.processEvents()
    assert not window.errors, window.errors
    pos = window.last_position
    assert pos["state"] == "tracking" and at - 2.0 < pos["t"] <= at
    bar = piece.bar_at(pos["score_quarters"])
    truth = ground_truth_bar(piece, load_alignment(perf), pos["t"])
    assert abs(bar - truth) <= 1
    assert window.view.highlighted_id == str(piece.bars["measure_id"][bar])


# ------------------------------------------------------------------------------------ Xvfb screenshot
@pytest.fixture(scope="module")
def xvfb():
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.skip("Xvfb is not installed (apt install xvfb)")
    for display in range(99, 110):
        if Path(f"/tmp/.X11-unix/X{display}").exists() or Path(f"/tmp/.X{display}-lock").exists():
            continue
        proc = subprocess.Popen([exe, f":{display}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(50):
            if Path(f"/tmp/.X11-unix/X{display}").exists():
                break
            time.sleep(0.1)
        if proc.poll() is None:
            yield f":{display}"
            proc.terminate()
            proc.wait(5)
            return
    pytest.skip("could not start Xvfb")


def _excerpt(asap_root: Path):
    from companion.bench.asap import load_alignment, performances

    perfs = [p for p in performances(asap_root) if str(p.folder).endswith("Beethoven/Piano_Sonatas/21-1")]
    if not perfs:
        pytest.skip("ASAP has no performance of Beethoven op. 53 i")
    perf = perfs[0]
    return perf, load_score(perf.score), load_alignment(perf)


def test_screenshot_under_xvfb_shows_the_ground_truth_bar(asap, xvfb, tmp_path):
    """Replays ASAP's ground-truth positions of a real performance (no tracker: the GUI alone is tested)
    through ``companion gui --screenshot`` under Xvfb, and checks the highlighted bar and the pixels."""
    from companion.bench.gui_bench import ground_truth_bar, ground_truth_positions

    perf, piece, alignment = _excerpt(asap)
    at = 75.0  # bar 49 in the ASAP performance used here: a page turn has happened by then
    jsonl = tmp_path / "positions.jsonl"
    jsonl.write_text("".join(json.dumps(p) + "\n" for p in ground_truth_positions(piece, alignment, until_s=at + 5)))
    png = tmp_path / "gui.png"
    env = {**os.environ, "DISPLAY": xvfb, "QT_QPA_PLATFORM": "xcb", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    cmd = COMPANION_GUI + ["--db", str(tmp_path / "no_db"),
           "--piece", str(perf.score), "--positions", str(jsonl), "--screenshot", str(png), "--at", str(at), "--json"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    shown = json.loads(out.stdout.strip().splitlines()[-1])
    truth = ground_truth_bar(piece, alignment, at)
    assert shown["measure_id"] == str(piece.bars["measure_id"][truth])
    assert shown["measure"] == str(piece.bars["number"][truth])
    assert png.is_file()
    img = QImage(str(png))
    assert img.width() >= 1000 and img.height() >= 700
    x, y, w, h = shown["highlight_px"]
    assert w > 20 and h > 20
    inside = img.pixelColor(x + 4, y + h // 2)  # the translucent blue tint over the paper
    outside = img.pixelColor(x - 6 if x > 300 else x + w + 6, y + h // 2)
    assert inside.blue() > inside.red() + 10
    assert abs(outside.blue() - outside.red()) < 12
    assert shown["pages"] and len(shown["pages"]) == 2 and shown["pages"][0] > 1


def test_void_slot_calls_keep_references_to_none(app):
    """PySide6-Essentials 6.12.0 released one reference to ``None`` per call of a void slot
    (``QTimer.stop()``, ``QWidget.update()``...), so a repainting window aborted within minutes with
    ``Fatal Python error: none_dealloc``; 6.11.3, the pinned version, does not. Guards any upgrade."""
    from PySide6.QtCore import QTimer

    t = QTimer()
    before = sys.getrefcount(None)
    for _ in range(2000):
        t.stop()
    assert before - sys.getrefcount(None) < 10


def test_screenshot_under_xvfb_follows_rendered_audio_with_the_tracker(asap, xvfb, tmp_path):
    """``companion gui --input WAV --piece SCORE --screenshot``: D's chroma tracker follows a rendered
    ASAP performance (Beethoven sonata no. 26 "Les Adieux" i, first 32 s, FluidR3 Mono); the highlight must be on the
    ground-truth bar or a neighbour (the ground truth changes bar at the first note of a bar; the
    tracker's estimate may lead or lag it by a fraction of a beat)."""
    import soundfile as sf

    from companion.audio.render import available_soundfonts, render_notes
    from companion.bench.asap import load_alignment, load_performance_notes, performances
    from companion.bench.gui_bench import ground_truth_bar

    fonts = available_soundfonts()
    if "fluidr3mono" not in fonts:
        pytest.skip("fluidsynth or the FluidR3 Mono soundfont is missing (apt install fluidsynth fluidr3mono-gm-soundfont)")
    perfs = [p for p in performances(asap) if p.name.endswith("Beethoven/Piano_Sonatas/26-1/Broberg01")]
    if not perfs:
        pytest.skip("ASAP has no Broberg01 performance of Beethoven sonata no. 26 i")
    perf = perfs[0]
    piece, alignment = load_score(perf.score), load_alignment(perf)
    notes, dur = load_performance_notes(perf.midi)
    end_s, at = 32.0, 30.0
    keep = notes["onset_s"] < end_s
    audio = render_notes(notes["onset_s"][keep], notes["pitch"][keep], np.minimum(dur[keep], end_s - notes["onset_s"][keep]),
                         notes["velocity"][keep], soundfont="fluidr3mono")
    wav = tmp_path / "excerpt.wav"
    sf.write(str(wav), audio, 44100)
    png = tmp_path / "gui_tracker.png"
    env = {**os.environ, "DISPLAY": xvfb, "QT_QPA_PLATFORM": "xcb", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    cmd = COMPANION_GUI + ["--db", str(tmp_path / "no_db"), "--piece", str(perf.score),
           "--input", str(wav), "--screenshot", str(png), "--at", str(at), "--json"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    shown = json.loads(out.stdout.strip().splitlines()[-1])
    assert png.is_file() and abs(shown["t"] - at) < 0.2
    assert shown["state"] == "tracking"
    truth = ground_truth_bar(piece, alignment, at)
    bar = piece.bar_at(shown["score_quarters"])
    assert shown["measure_id"] == str(piece.bars["measure_id"][bar])
    assert abs(bar - truth) <= 1, f"highlight on bar {piece.bars['number'][bar]}, ground truth {piece.bars['number'][truth]}"
    img = QImage(str(png))
    x, y, w, h = shown["highlight_px"]
    assert img.pixelColor(x + 4, y + h // 2).blue() > img.pixelColor(x + 4, y + h // 2).red() + 10
