"""Tokens -> a band arrangement as a music21 score: melody, chords and bass on General MIDI instruments."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from music21 import instrument, meter, note, stream, tempo

from db.files import atomic_path
from generate.drums import Hit
from train.structure import top_line
from train.tokens import GridNote, GridPiece, TokenizerConfig
from transcribe.notes import NoteEvent


@dataclass(frozen=True)
class Palette:
    name: str
    melody: int  # General MIDI program numbers (0-based)
    chords: int
    bass: int
    bright: bool  # its character, matched against a style's measured sound
    sustained: bool


PALETTES = (  # the first four in the order earlier batches drew them
    Palette("piano trio", melody=0, chords=4, bass=32, bright=False, sustained=False),
    Palette("strings", melody=40, chords=48, bass=42, bright=True, sustained=True),
    Palette("acoustic band", melody=73, chords=24, bass=33, bright=True, sustained=False),
    Palette("warm keys", melody=11, chords=89, bass=35, bright=False, sustained=True),
    Palette("harp and guitar", melody=46, chords=24, bass=32, bright=True, sustained=False),
    Palette("church organ", melody=19, chords=19, bass=19, bright=False, sustained=True),
    Palette("chamber winds", melody=68, chords=48, bass=70, bright=True, sustained=True),
    Palette("felt piano", melody=0, chords=0, bass=0, bright=False, sustained=False),
)
VELOCITIES = {"melody": 92, "chords": 58, "bass": 80}  # each line's velocity at medium energy
BRIGHT_CENTROID = 1800.0  # Hz: a style whose sources' median spectral centroid is above this sounds bright
STRUCK_SHARE = 0.15  # a style whose sources put more of their top band in attacks sounds struck or plucked


@dataclass(frozen=True)
class StyleSound:
    """A style's sound as its sources measured: median spectral centroid and percussive share above 5 kHz."""

    centroid: float
    percussive_share: float

    @property
    def bright(self) -> bool:
        return self.centroid >= BRIGHT_CENTROID

    @property
    def sustained(self) -> bool:
        return self.percussive_share < STRUCK_SHARE

    def describe(self) -> str:
        """Why its palettes were chosen, as the manifest and the page say it."""
        return (
            f"the style's sources sound {'bright' if self.bright else 'dark'} (spectral centroid"
            f" {self.centroid:.0f} Hz) and {'sustained' if self.sustained else 'struck or plucked'}"
            f" ({self.percussive_share:.0%} of the top band in attacks)"
        )


def palettes_for(sound: StyleSound | None) -> list[Palette]:
    """The palettes whose character matches the style's sound (bright or dark, sustained or struck); every
    palette when the sound was not measured."""
    if sound is None:
        return list(PALETTES)
    return [p for p in PALETTES if p.bright == sound.bright and p.sustained == sound.sustained]


@dataclass(frozen=True)
class Arrangement:
    score: stream.Score
    notes: list[NoteEvent]  # every pitched note in seconds, for analysis
    seconds: float
    drums: tuple[Hit, ...] = ()  # on MIDI channel 10, written beside the score
    steps_per_beat: int = 4


def _lines(piece: GridPiece) -> dict[str, list[tuple[int, int, int]]]:
    """(start step, length, pitch) per line: at each onset the top note is the melody, the lowest the bass.

    Pitches stay as the model wrote them (it learned its registers from the music), so the track's
    notes are the sampled notes, only spread over the palette's instruments.
    """
    at: dict[int, list[GridNote]] = defaultdict(list)
    for n in piece.notes:
        at[n.step].append(n)
    lines: dict[str, list[tuple[int, int, int]]] = {"melody": [], "chords": [], "bass": []}
    for step in sorted(at):
        notes = sorted(at[step], key=lambda n: -n.pitch)
        lines["melody"].append((step, notes[0].steps, notes[0].pitch))
        if len(notes) > 1:
            lines["bass"].append((step, notes[-1].steps, notes[-1].pitch))
        lines["chords"] += [(step, n.steps, n.pitch) for n in notes[1:-1]]
    return lines


def arrange(
    piece: GridPiece,
    *,
    bpm: float,
    palette: Palette,
    config: TokenizerConfig,
    bars: int | None = None,
    drums: Sequence[Hit] = (),
    velocity: float = 1.0,
) -> Arrangement:
    """Build the score at ``bpm`` on the palette's instruments, with ``drums`` if any, in the piece's meter (its
    beats a bar over quarter notes: a MIDI file without one reads as 4/4, and a waltz's bars come out shifted
    in a sequencer); nothing sounds past the last of its ``bars`` (by default the bar of its last note). Every
    part's velocity is multiplied by ``velocity`` (the energy asked for: ``generate.controls``)."""
    score = stream.Score()
    events: list[NoteEvent] = []
    spb = config.steps_per_beat
    seconds_per_step = 60.0 / bpm / spb
    end = (bars if bars is not None else piece.bars(config)) * piece.bar_steps(config)
    velocities = {line: min(127, round(v * velocity)) for line, v in VELOCITIES.items()}
    programs = {"melody": palette.melody, "chords": palette.chords, "bass": palette.bass}
    for line, notes in _lines(piece).items():
        part = stream.Part(id=line)
        part.insert(0, tempo.MetronomeMark(number=bpm))
        part.insert(0, meter.TimeSignature(f"{piece.meter}/4"))
        part.insert(0, instrument.instrumentFromMidiProgram(programs[line]))
        for start, length, pitch in notes:
            length = min(length, end - start)
            if length <= 0:
                continue
            element = note.Note(pitch, quarterLength=length / spb)
            element.volume.velocity = velocities[line]
            part.insert(start / spb, element)
            events.append(
                NoteEvent(start * seconds_per_step, (start + length) * seconds_per_step, pitch, velocities[line])
            )
        score.insert(0, part)
    kept = tuple(h for h in drums if h.step < end)
    return Arrangement(
        score=score, notes=sorted(events), seconds=end * seconds_per_step, drums=kept, steps_per_beat=spb
    )


def write_midi(arrangement: Arrangement, path: Path) -> Path:
    """The score as a MIDI file (music21): a track per part, named by the part and on its own channel, and the
    drums as one more track on channel 10.

    music21 gives parts on one instrument one channel, where a note ending in one part silences the same
    pitch still sounding in another (the felt piano's three parts are all piano); on their own channels the
    parts sound as written, and each can be played alone as a stem (``stem_midis``).
    """
    import mido

    with atomic_path(path) as tmp:
        arrangement.score.write("midi", fp=str(tmp))
        midi = mido.MidiFile(str(tmp))
        parts = [str(part.id) for part in arrangement.score.parts]
        if len(midi.tracks) == len(parts) + 1:  # the conductor track (tempo, meter), then one per part
            for number, (name, track) in enumerate(zip(parts, midi.tracks[1:], strict=True)):
                _own_track(track, name, channel=number if number < DRUM_CHANNEL else number + 1)
        if arrangement.drums:
            midi.tracks.append(_drum_track(arrangement.drums, arrangement.steps_per_beat, midi.ticks_per_beat))
        midi.save(str(tmp))
    return path


DRUM_CHANNEL = 9  # General MIDI's channel 10


def _own_track(track: Any, name: str, *, channel: int) -> None:
    import mido

    for index, message in enumerate(track):
        if message.type == "track_name":
            track[index] = message.copy(name=name)
        elif hasattr(message, "channel"):
            track[index] = message.copy(channel=channel)
    if not any(message.type == "track_name" for message in track):
        track.insert(0, mido.MetaMessage("track_name", name=name, time=0))


def stem_midis(midi_path: Path, folder: Path, prefix: str) -> dict[str, Path]:
    """One MIDI file per part of ``midi_path`` (as ``write_midi`` writes them) that plays a note: its conductor
    track and that part's track, named ``{prefix}-{part}.mid`` in ``folder``; by part name, in track order."""
    import mido

    source = mido.MidiFile(str(midi_path))
    stems: dict[str, Path] = {}
    for track in source.tracks[1:]:
        if not any(message.type == "note_on" and message.velocity > 0 for message in track):
            continue
        alone = mido.MidiFile(type=source.type, ticks_per_beat=source.ticks_per_beat)
        alone.tracks = [source.tracks[0], track]
        path = folder / f"{prefix}-{track.name}.mid"
        with atomic_path(path) as tmp:
            alone.save(str(tmp))
        stems[track.name] = path
    return stems


def _drum_track(hits: Sequence[Hit], steps_per_beat: int, ticks_per_beat: int) -> Any:
    import mido

    per_step = ticks_per_beat / steps_per_beat
    events = []
    for hit in hits:
        tick = round(hit.step * per_step)
        events.append((tick, 1, mido.Message("note_on", channel=DRUM_CHANNEL, note=hit.key, velocity=hit.velocity)))
        events.append(
            (tick + round(per_step), 0, mido.Message("note_off", channel=DRUM_CHANNEL, note=hit.key, velocity=0))
        )
    track = mido.MidiTrack([mido.MetaMessage("track_name", name="drums", time=0)])
    now = 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def singable(piece: GridPiece, config: TokenizerConfig, *, max_leap: int = 12) -> GridPiece:
    """The piece with its top line kept within ``max_leap`` semitones from note to note: a note that leaps
    further is moved by octaves towards the note before it (the harmony under it stays as written)."""
    line = top_line(piece)
    moved: dict[GridNote, GridNote] = {}
    previous = line[0].pitch if line else 0
    for n in line:
        pitch = n.pitch
        while abs(pitch - previous) > max_leap:
            step = -12 if pitch > previous else 12
            if not config.pitch_low <= pitch + step <= config.pitch_high:
                break
            pitch += step
        if pitch != n.pitch:
            moved[n] = GridNote(n.step, pitch, n.steps)
        previous = pitch
    if not moved:
        return piece
    notes = {moved.get(n, n) for n in piece.notes}
    return GridPiece(piece.meter, tuple(sorted(notes)))


def drums_twice(hits: Sequence[Hit], *, span: int) -> list[Hit]:
    """The drums of a loop of ``span`` steps, played twice (as ``played_twice`` plays its notes)."""
    inside = [h for h in hits if h.step < span]
    return [*inside, *(Hit(h.step + span, h.key, h.velocity) for h in inside)]


def played_twice(piece: GridPiece, config: TokenizerConfig, *, bars: int) -> GridPiece:
    """The piece's ``bars`` bars and then the same bars again: a loop rendered this way and cut at the second
    pass has the first pass's ringing notes under its opening, as a listener hears it when it repeats."""
    span = bars * piece.bar_steps(config)
    inside = [n for n in piece.notes if n.step < span]
    again = [GridNote(n.step + span, n.pitch, n.steps) for n in inside]
    return GridPiece(piece.meter, tuple(sorted(inside + again)))
