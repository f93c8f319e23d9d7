"""Forms, endings, lengths and loops: planned on real corpus bars, checked on real renders."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from music21 import corpus

from generate.arrange import PALETTES, arrange, played_twice, singable, write_midi
from generate.audio import decoded_mono, finish_track, seam
from generate.form import (
    Form,
    FormError,
    Section,
    assemble,
    candidate_forms,
    choose_form,
    complete_bars,
    from_downbeat,
    held_to_seam,
    sounding_from,
    with_cadence,
)
from generate.synth import render_wav
from train.scores import score_tokens
from train.structure import bar_sets, recurring_bar_share, top_line, wide_leap_share
from train.tokens import BAR, GridNote, GridPiece, TokenizerConfig, decode, key_of, quantise
from transcribe.beats import grid_from_midi
from transcribe.midi import read_midi

CONFIG = TokenizerConfig()


def _chorale_bars(name: str) -> tuple[list[str], list[list[str]]]:
    tokens = score_tokens(corpus.parse(name), CONFIG)[0]
    head = tokens[: tokens.index(BAR)]
    return head, sounding_from(complete_bars([*tokens, BAR]))


def test_every_candidate_form_fills_the_bars_asked_for_and_a_loop_ends_on_a_contrast() -> None:
    for total in (6, 11, 24, 60):
        forms = candidate_forms(total)
        assert forms and all(f.total_bars == total for f in forms)
        assert all(f.sections[0].label == "A" and f.sections[-1].label == "A" for f in forms)  # theme, return
        for form in forms:
            assert [s.start for s in form.sections] == list(np.cumsum([0] + [s.bars for s in form.sections[:-1]]))
        loops = candidate_forms(total, loop=True)
        assert loops and all(f.sections[-1].label.startswith("B") and f.loop for f in loops)
    assert candidate_forms(4) == []  # no room for a theme, a contrast and a return


def test_the_theme_returns_and_the_variation_keeps_its_opening() -> None:
    head, bars = _chorale_bars("bach/bwv10.7")
    form = Form(4, (Section("A", 0, 4), Section("A'", 4, 4), Section("B", 8, 3), Section("A", 11, 4)))
    variation = [*bars[:2], *bars[8:10]]
    tokens = assemble(form, head, theme=bars[:4], variation=variation, fresh=bars[4:7])
    assert tokens[: len(head)] == head
    placed = complete_bars([*tokens, BAR])
    assert len(placed) == 15
    assert placed[11:15] == bars[:4] and placed[4:6] == bars[:2] and placed[6:8] == bars[8:10]
    assert placed[8:11] == bars[4:7]
    with pytest.raises(FormError):
        assemble(form, head, theme=bars[:4], variation=variation, fresh=bars[4:5])


def test_a_theme_taken_from_the_first_downbeat_returns_without_a_bar_of_silence() -> None:
    head, bars = _chorale_bars("bach/bwv66.6")  # it opens on an upbeat: three beats of rests and a quaver pair
    stream = from_downbeat(bars)
    assert stream == bars[1:]
    form = Form(4, (Section("A", 0, 4), Section("B", 4, 4), Section("A", 8, 4)))

    def longest_wait(material: list[list[str]]) -> float:
        """Beats from one onset to the next, at most, over the track made of ``material``."""
        piece = decode(assemble(form, head, theme=material[:4], variation=[], fresh=material[4:8]), CONFIG)
        return float(np.diff(sorted({n.step for n in piece.notes})).max()) / CONFIG.steps_per_beat

    assert longest_wait(bars) >= 4  # from the upbeat, the returning theme waits out its bar of rests
    assert longest_wait(stream) <= 2  # from the downbeat: no wait longer than the chorale's own
    late = ["Pos_2", "Pitch_60", "Dur_2"]  # a quaver after the downbeat
    assert from_downbeat([late, [], ["Pos_0", "Pitch_62", "Dur_4"]]) == [["Pos_0", "Pitch_62", "Dur_4"]]
    assert from_downbeat([[], late]) == [late]  # no bar on its downbeat: from the first that sounds


def test_the_form_chosen_follows_the_style_share_of_recurring_bars() -> None:
    head, bars = _chorale_bars("bach/bwv101.7")
    stream = [*bars, *_chorale_bars("bach/bwv10.7")[1]][:24]  # bars one after another, as a model samples them
    assert len(stream) == 24
    shares = {}
    for target in (0.0, 0.6):
        form = choose_form(24, stream, head, CONFIG, recurrence=target, rng=random.Random(0))
        variation = stream[: form.theme_bars]
        fresh = stream[form.theme_bars : form.theme_bars + form.fresh_bars]
        track = decode(assemble(form, head, theme=stream[: form.theme_bars], variation=variation, fresh=fresh), CONFIG)
        shares[target] = recurring_bar_share(track, CONFIG)
        assert form.total_bars == 24
    assert shares[0.0] < shares[0.6]
    assert abs(shares[0.6] - 0.6) < 0.15  # the plans reach the share a dance tune has
    short = choose_form(4, stream, head, CONFIG, recurrence=0.3, rng=random.Random(0))
    assert short.plan == "A" and short.total_bars == 4  # too short for a return: the theme alone


def test_the_form_is_chosen_on_the_track_with_its_ending() -> None:
    head, bars = _chorale_bars("bach/bwv101.7")
    stream = [*bars, *_chorale_bars("bach/bwv10.7")[1]][:24]
    for total in (12, 16):  # a chorale's 45 s: the last bar is a large share of it
        form = choose_form(total, stream, head, CONFIG, recurrence=0.17, rng=random.Random(0))
        theme, fresh = stream[: form.theme_bars], stream[form.theme_bars : form.theme_bars + form.fresh_bars]
        track = decode(assemble(form, head, theme=theme, variation=theme, fresh=fresh), CONFIG)
        ended = with_cadence(track, CONFIG, bars=total)  # as a batch finishes it
        assert abs(recurring_bar_share(ended, CONFIG) - 0.17) < 0.03, (total, form.plan)  # 0.08 and 0.12 before


def test_recurring_bars_allow_one_changed_note() -> None:
    bar = [GridNote(0, 60, 4), GridNote(4, 64, 4), GridNote(8, 67, 4), GridNote(12, 72, 4)]
    moved = [GridNote(n.step + 16, n.pitch, n.steps) for n in bar]
    changed = [*moved[:3], GridNote(28, 74, 4)]  # one note to another pitch class
    other = [GridNote(n.step + 32, n.pitch + 1, n.steps) for n in bar]  # every pitch class moved
    piece = GridPiece(4, tuple(sorted([*bar, *changed, *other])))
    assert len(bar_sets(piece, CONFIG)) == 3
    assert recurring_bar_share(piece, CONFIG) == pytest.approx(1 / 3)
    assert recurring_bar_share(piece, CONFIG, changed=0) == 0.0


@pytest.mark.parametrize("name", ["bach/bwv10.7", "bach/bwv26.6", "bach/bwv40.8"])
def test_a_track_ends_on_the_tonic_chord_struck_on_the_last_downbeat(name: str) -> None:
    piece = decode(score_tokens(corpus.parse(name), CONFIG)[0], CONFIG)
    bars = piece.bars(CONFIG) - 2  # cut before the chorale's own cadence
    ended = with_cadence(piece, CONFIG, bars=bars)
    last = (bars - 1) * ended.bar_steps(CONFIG)
    final = [n for n in ended.notes if n.step >= last]
    assert final and {n.step for n in final} == {last}  # one chord, on the downbeat
    assert all(n.step + n.steps <= bars * ended.bar_steps(CONFIG) for n in ended.notes)  # nothing past the end
    key = key_of(GridPiece(piece.meter, tuple(n for n in piece.notes if n.step < last)))
    assert key % 12 in {n.pitch % 12 for n in final}
    assert min(final).pitch % 12 == key % 12 == max(final, key=lambda n: n.pitch).pitch % 12  # tonic at both ends
    assert len({n.pitch % 12 for n in final}) == 3  # a full triad
    thin = [n for n in with_cadence(piece, CONFIG, bars=bars, voices=2).notes if n.step >= last]
    assert len(thin) == 2 and {n.pitch % 12 for n in thin} == {key % 12}  # a thinner texture: the tonic twice
    alone = [n for n in with_cadence(piece, CONFIG, bars=bars, voices=1).notes if n.step >= last]
    assert [n.pitch for n in alone] == [max(final, key=lambda n: n.pitch).pitch]  # alone, where the melody ends


def _held_chord_piece() -> GridPiece:
    """Eight bars: a tune over chords, the last bar a chord held to the seam, the first bar opening on a rest."""
    notes = []
    for bar in range(8):
        base = bar * 16
        if bar == 7:
            notes += [GridNote(base, p, 16) for p in (48, 55, 64, 67)]
            continue
        notes += [GridNote(base + 4 + 4 * k, 72 + (bar + 2 * k) % 7, 4) for k in range(3)]
        notes += [GridNote(base + 4, p, 12) for p in (52, 55, 60)]
    return GridPiece(4, tuple(sorted(notes)))


def test_a_track_is_its_bars_long_and_fades_on_its_last_chord(tmp_path: Path) -> None:
    piece = _held_chord_piece()
    bpm, bars = 96.0, 8
    bar_seconds = 60 / bpm * 4
    arrangement = arrange(piece, bpm=bpm, palette=PALETTES[0], config=CONFIG, bars=bars)
    wav = render_wav(write_midi(arrangement, tmp_path / "t.mid"), tmp_path / "t.wav")
    tail = 0.5
    seconds = finish_track(wav, tmp_path / "t.mp3", seconds=bars * bar_seconds + tail, fade_seconds=1.5)
    samples, rate = decoded_mono(tmp_path / "t.mp3")
    assert len(samples) == round((bars * bar_seconds + tail) * rate) and seconds == pytest.approx(len(samples) / rate)
    frame = rate // 10
    rms = [float(np.sqrt(np.mean(samples[i : i + frame] ** 2))) for i in range(0, len(samples) - frame, frame)]
    chord = rms[int((bars - 1) * bar_seconds * 10) + 1]
    assert rms[-1] < 0.05 * chord  # faded out, not cut
    assert max(rms[:3]) < 0.01  # the first bar opens on a rest: nothing is trimmed from the start


def test_a_track_s_midi_keeps_its_meter_and_so_its_bars(tmp_path: Path) -> None:
    head, bars = _chorale_bars("bach/bwv66.6")
    chorale = decode([*head, *(t for bar in bars for t in (BAR, *bar))], CONFIG)
    opening = [n for n in chorale.notes if n.step < 60]  # its first fifteen beats, regrouped as five bars of three
    waltz = GridPiece(3, tuple(sorted([*opening, *(GridNote(n.step + 60, n.pitch, n.steps) for n in opening)])))
    share = recurring_bar_share(waltz, CONFIG)
    assert share == 0.5  # the second five bars restate the first five
    path = write_midi(arrange(waltz, bpm=100.0, palette=PALETTES[0], config=CONFIG, bars=10), tmp_path / "w.mid")
    grid = grid_from_midi(str(path))
    assert grid.meter == 3
    again = quantise(read_midi(path), grid, CONFIG)  # as a sequencer (or bench/quality.py) reads the file
    assert again.meter == 3 and recurring_bar_share(again, CONFIG) == share  # read as 4/4: 0.0


def test_a_loop_repeats_without_a_seam_where_a_plain_cut_has_one(tmp_path: Path) -> None:
    piece = _held_chord_piece()
    bpm, bars = 96.0, 8
    bar_seconds = 60 / bpm * 4
    seconds = bars * bar_seconds
    palette = PALETTES[1]  # strings: the held chord rings on past the seam
    twice = arrange(played_twice(piece, CONFIG, bars=bars), bpm=bpm, palette=palette, config=CONFIG, bars=2 * bars)
    wav = render_wav(write_midi(twice, tmp_path / "twice.mid"), tmp_path / "twice.wav")
    finish_track(wav, tmp_path / "loop.mp3", seconds=seconds, loop_from=seconds)
    once = arrange(piece, bpm=bpm, palette=palette, config=CONFIG, bars=bars)
    wav = render_wav(write_midi(once, tmp_path / "once.mid"), tmp_path / "once.wav")
    finish_track(wav, tmp_path / "cut.mp3", seconds=seconds)

    loop, rate = decoded_mono(tmp_path / "loop.mp3")
    assert len(loop) == round(seconds * rate)  # the MP3 decodes to exactly its bars: no encoder padding
    good = seam(loop, rate, bar_seconds=bar_seconds)
    assert good.rms_ratio <= 2.0 and good.click_ratio <= 1.0, good
    cut, _ = decoded_mono(tmp_path / "cut.mp3")
    bad = seam(cut, rate, bar_seconds=bar_seconds)
    assert bad.rms_ratio > 4 * max(good.rms_ratio, 0.5), (good, bad)  # the held chord stops dead at a plain cut


def _short_last_chord_piece() -> GridPiece:
    """The held-chord piece with its last chord struck for one beat and three beats of rest after it."""
    piece = _held_chord_piece()
    return GridPiece(4, tuple(GridNote(n.step, n.pitch, 4) if n.step == 7 * 16 else n for n in piece.notes))


def test_a_loop_whose_last_bar_ends_in_rests_is_held_to_its_seam() -> None:
    piece = _short_last_chord_piece()
    held = held_to_seam(piece, CONFIG, bars=8)
    assert sorted((n.pitch, n.steps) for n in held.notes if n.step == 7 * 16) == [
        (48, 16),
        (55, 16),
        (64, 16),
        (67, 16),
    ]
    assert [n for n in held.notes if n.step < 7 * 16] == [n for n in piece.notes if n.step < 7 * 16]
    sounding = _held_chord_piece()  # its last chord already sounds to the seam
    assert held_to_seam(sounding, CONFIG, bars=8) == sounding
    ringing = GridPiece(4, (GridNote(0, 60, 4), GridNote(8, 64, 12)))  # rings on past the seam, into the repeat
    assert held_to_seam(ringing, CONFIG, bars=1) == ringing


def test_a_loop_has_no_gap_at_its_seam_when_its_last_notes_are_held(tmp_path: Path) -> None:
    """On real renders: the loop whose last chord stops a beat in is silent for most of a second before its
    seam (every repeat drops out); held to the seam, it sounds up to the first downbeat and steps there no
    more steeply than at its own bar lines."""
    bpm, bars = 96.0, 8
    bar_seconds = 60 / bpm * 4
    seconds = bars * bar_seconds
    measured = {}
    for name, piece in (
        ("rests", _short_last_chord_piece()),
        ("held", held_to_seam(_short_last_chord_piece(), CONFIG, bars=bars)),
    ):
        twice = arrange(
            played_twice(piece, CONFIG, bars=bars), bpm=bpm, palette=PALETTES[0], config=CONFIG, bars=2 * bars
        )
        wav = render_wav(write_midi(twice, tmp_path / f"{name}.mid"), tmp_path / f"{name}.wav")
        finish_track(wav, tmp_path / f"{name}.mp3", seconds=seconds, loop_from=seconds)
        loop, rate = decoded_mono(tmp_path / f"{name}.mp3")
        measured[name] = seam(loop, rate, bar_seconds=bar_seconds)
    assert measured["rests"].gap_seconds > 0.5, measured
    assert measured["held"].gap_seconds == 0.0, measured
    assert measured["held"].bar_line_step_ratio <= 1.5, measured


def test_a_click_steps_more_than_the_bar_lines_and_a_struck_downbeat_does_not() -> None:
    """A held tone cut mid-cycle jumps at its seam (a click: many times the steps at its bar lines); cut at
    whole cycles it does not. Sixteen identical struck bars cut at a bar line step there as at every bar line,
    though that step is above the track's 99.9th-percentile step (which counts the attacks as clicks)."""
    rate, bar_seconds = 44100, 0.5
    tone = 0.5 * np.sin(2 * np.pi * 100 * np.arange(16 * 22050 + 110) / rate)  # 100 Hz: 441 samples a cycle
    whole = seam(tone[: 16 * 22050], rate, bar_seconds=bar_seconds)  # 800 whole cycles
    assert whole.bar_line_step_ratio == pytest.approx(1.0, abs=0.05), whole
    cut = seam(tone, rate, bar_seconds=bar_seconds)  # a quarter cycle more: it ends on the crest, starts at 0
    assert cut.bar_line_step_ratio > 20 and cut.click_ratio > 20, cut
    bar_seconds = 0.5003
    t = np.arange(round(bar_seconds * rate)) / rate
    bars = np.tile(0.5 * np.cos(2 * np.pi * 440 * t) * np.exp(-t / 0.15), 16)  # struck on a crest
    struck = seam(bars, rate, bar_seconds=bar_seconds)
    assert struck.bar_line_step_ratio == pytest.approx(1.0, abs=0.05) and struck.click_ratio > 1, struck
    assert struck.gap_seconds == 0.0
    quiet = bars.copy()
    quiet[-round(0.3 * rate) :] = 0.0  # the last 0.3 s silent
    assert seam(quiet, rate, bar_seconds=bar_seconds).gap_seconds == pytest.approx(0.3, abs=0.03)


def test_a_singable_top_line_leaps_an_octave_at_most_and_keeps_the_harmony() -> None:
    line = [(0, 72), (4, 74), (8, 91), (12, 76), (16, 55), (20, 74)]  # leaps of 17, 15, 21 and 19
    under = [GridNote(step, 48, 4) for step, _ in line]
    piece = GridPiece(4, tuple(sorted([*(GridNote(s, p, 4) for s, p in line), *under])))
    assert wide_leap_share(piece) == pytest.approx(4 / 5)
    sung = singable(piece, CONFIG)
    assert [n.pitch for n in top_line(sung)] == [72, 74, 79, 76, 67, 74]
    assert wide_leap_share(sung) == 0.0
    assert [n for n in sung.notes if n.pitch == 48] == under  # the notes under the melody are untouched
    assert singable(sung, CONFIG) == sung


def test_a_seam_is_measured_against_bar_lines_measured_the_same_way() -> None:
    """Sixteen identical bars, each a struck note decaying: cut at any bar line, the loop's seam is that bar
    line. Its jump is every bar line's (the frames just before and after each line, as at the seam; frames laid
    out from the seam straddle the other lines and read 1.34x), and 27x the median frame-to-frame jump: that
    ratio reads the attack on the downbeat, which any loop of struck notes has."""
    rate, bar_seconds = 44100, 0.5003  # bar lines that fall between the 1,024-sample frames
    t = np.arange(round(bar_seconds * rate)) / rate
    bars = np.tile(0.5 * np.sin(2 * np.pi * 440 * t) * np.exp(-t / 0.15), 16)
    measured = seam(bars, rate, bar_seconds=bar_seconds)
    assert measured.bar_line_ratio == pytest.approx(1.0, abs=0.02)
    assert measured.rms_ratio > 10
