"""The grammar-masked, stateful batch sampler over a saved model, and the lift that moves what it samples."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from train.model import ModelConfig, SavedModel
from train.profile import LEAP, MAJOR
from train.tokens import BAR
from train.vocab import SEP, Vocabulary
from transcribe.third_party import import_tensorflow

# Token kinds for the grammar, and which kind may follow which.
SPECIAL, METER, KEY, BAR_KIND, POS, PITCH, DUR = range(7)
FOLLOWS = {
    SPECIAL: (METER,),
    METER: (KEY,),
    KEY: (BAR_KIND,),
    BAR_KIND: (BAR_KIND, POS),
    POS: (PITCH,),
    PITCH: (DUR,),
    DUR: (PITCH, POS, BAR_KIND),
}


REGISTER_SLOPE = 1.5  # nats per semitone outside a row's register
TOP_P = 0.95  # the nucleus a batch samples with unless told otherwise; train.calibrate samples with it too
LIFT_KNOBS = ("onsets", "voices", "scale", "leaps", "repeats", "focus")  # what train.calibrate sets, in its order


@dataclass(frozen=True)
class Lift:
    """Logits added to every pitch token (after a note: another voice rather than moving on), taken from
    each position token (or the next bar) per beat it waits before the next onset, taken from pitches off
    the key's scale, from top notes that leap and from top notes that repeat the one before, and the
    network's choice among pitches sharpened: what brings a sampler's number of voices, onsets, chromatic
    notes, leaps and repeated notes in its top line, and how evenly it spreads its pitch classes to its
    style's."""

    voices: float = 0.0
    onsets: float = 0.0  # nats per beat of waiting
    scale: float = 0.0  # nats taken from each pitch off its key's scale (pitches are written relative to the key)
    leaps: float = 0.0  # nats taken from a top note more than LEAP semitones from the top note before it
    repeats: float = 0.0  # nats taken from a top note that repeats the top note before it
    # The network's pitch logits are multiplied by e**focus where a pitch may come (its temperature among
    # pitches alone), their total probability kept: above 0 it keeps more to the notes it prefers in context,
    # so a track's pitch classes spread less evenly (a fine-tuned model spread a fiddle tune's over its scale
    # more evenly than its pieces do, and a classifier heard it first).
    focus: float = 0.0
    # The register: a pitch token below ``low`` or above ``high`` loses REGISTER_SLOPE nats per semitone out
    # (an LSTM's voices drift, and a track's notes spread over more octaves than any of its style's pieces).
    low: int = 0
    high: int = 255

    @classmethod
    def of(cls, config: ModelConfig, style: str) -> Lift:
        """The lift calibrated for ``style`` (none for a style or a model that has none)."""
        return cls.from_knobs(config.style(style).lift)

    @classmethod
    def from_knobs(cls, knobs: Mapping[str, float]) -> Lift:
        """A lift from what calibration set (``knobs()``); a knob left out is 0."""
        return cls(
            onsets=float(knobs.get("onsets", 0.0)),
            voices=float(knobs.get("voices", 0.0)),
            scale=float(knobs.get("scale", 0.0)),
            leaps=float(knobs.get("leaps", 0.0)),
            repeats=float(knobs.get("repeats", 0.0)),
            focus=float(knobs.get("focus", 0.0)),
        )

    def knobs(self) -> dict[str, float]:
        """What calibration sets (the register is drawn per track), as a model's config keeps it."""
        return {name: float(getattr(self, name)) for name in LIFT_KNOBS}

    def within(self, register: Sequence[int]) -> Lift:
        """The lift kept to ``register`` (a piece's lowest and highest pitch token; none when empty)."""
        return dataclasses.replace(self, low=int(register[0]), high=int(register[1])) if register else self

    def bias(self, grammar: Grammar) -> np.ndarray:
        """What the lift adds to each token's logit before sampling (the wait-dependent part aside)."""
        pitch = grammar.kinds == PITCH
        outside = np.maximum(np.maximum(self.low - grammar.values, grammar.values - self.high), 0)
        chromatic = ~np.isin(grammar.values % 12, MAJOR)  # pitches are written from the key's major tonic
        return np.where(pitch, self.voices - REGISTER_SLOPE * outside - self.scale * chromatic, 0.0).astype(np.float32)


@dataclass(frozen=True)
class Grammar:
    """Per-token kind and value arrays and the kind-to-kind table the sampler masks with."""

    kinds: np.ndarray  # (vocabulary,) kind of each token
    values: np.ndarray  # meter, position or pitch of each token (0 otherwise)
    follows: np.ndarray  # (kinds, kinds) 1 where the column kind may follow the row kind

    @classmethod
    def of(cls, vocab: Vocabulary) -> Grammar:
        kinds = np.full(len(vocab), SPECIAL, np.int32)
        values = np.zeros(len(vocab), np.int32)
        for i, token in enumerate(vocab.tokens):
            name, _, value = token.partition("_")
            kind = {"Meter": METER, "Key": KEY, "Pos": POS, "Pitch": PITCH, "Dur": DUR}.get(name)
            if token == BAR:
                kind = BAR_KIND
            if kind is not None:
                kinds[i] = kind
                values[i] = int(value) if value.isdigit() else 0
        follows = np.zeros((7, 7), np.float32)
        for before, after in FOLLOWS.items():
            follows[before, list(after)] = 1.0
        return cls(kinds, values, follows)

    def valid(self, ids: np.ndarray, steps_per_beat: int) -> bool:
        """Whether a sampled sequence (after its prompt) obeys the grammar: every step would have decoded."""
        kind, position, pitch, meter = SPECIAL, -1, 128, 4
        for i in ids:
            k, v = int(self.kinds[i]), int(self.values[i])
            if not self.follows[kind, k]:
                return False
            if k == POS and not (position < v < meter * steps_per_beat):
                return False
            if k == PITCH and v >= pitch:
                return False
            kind = k
            meter = v if k == METER else meter
            position = -1 if k == BAR_KIND else v if k == POS else position
            pitch = 128 if k == POS else v if k == PITCH else pitch
        return True


def right_aligned(rows: list[list[int]], pad: int) -> np.ndarray:
    """Rows of different lengths as one array, each at its right edge (the sampler starts each at its own first id)."""
    width = max(len(r) for r in rows)
    return np.array([[pad] * (width - len(r)) + r for r in rows], dtype=np.int32)


def sample(
    saved: SavedModel,
    *,
    batch: int,
    steps: int,
    temperature: float,
    top_p: float,
    seed: int,
    prompt: np.ndarray | None = None,
    prompt_lengths: Sequence[int] | None = None,
    lifts: Sequence[Lift] | None = None,
) -> np.ndarray:
    """Sample ``batch`` sequences of ``steps`` tokens at once, one LSTM step per token.

    The LSTM states are carried from step to step (nothing is re-read) and the whole loop runs in
    one ``tf.function`` graph. Tokens that cannot follow are masked before sampling, so every
    sequence decodes: after a meter a key, after the key a bar, after a bar a position or a bar, after a position a
    pitch, after a pitch its duration, after a duration a lower pitch at the same position, a later
    position in the bar (within the meter) or a bar. ``prompt`` is a (batch, n) array of ids to
    start from (the state is primed on it); without one each sequence starts from the separator.
    Prompts of different lengths are right-aligned in that array with ``prompt_lengths`` given: a row's
    state starts at its own first token (what lies to its left is never read). ``lifts`` (one per row)
    move the number of voices and onsets, the notes off the key's scale and the top line's leaps and repeated
    notes as calibrated for a style, and keep each row to its register (``Lift``).
    """
    import_tensorflow()  # once per process, without its known start-up errors
    import tensorflow as tf

    model, vocab = saved.model, saved.vocab
    embedding, dense = model.get_layer("embedding"), model.get_layer("logits")
    cells = [model.get_layer(f"lstm_{n}").cell for n in range(len(saved.config.units))]
    grammar = Grammar.of(vocab)
    kinds = tf.constant(grammar.kinds)
    values = tf.constant(grammar.values)
    follows = tf.constant(grammar.follows)
    rows = list(lifts) if lifts is not None else [Lift()] * batch
    bias = tf.constant(np.stack([r.bias(grammar) for r in rows]))  # (batch, vocab)
    hurry = tf.constant([[r.onsets] for r in rows], tf.float32)  # (batch, 1)
    leaping = tf.constant([[r.leaps] for r in rows], tf.float32)  # (batch, 1)
    repeating = tf.constant([[r.repeats] for r in rows], tf.float32)  # (batch, 1)
    sharpen = tf.constant([[math.exp(r.focus)] for r in rows], tf.float32)  # (batch, 1)
    pitch_tokens = tf.constant(grammar.kinds == PITCH)[None, :]  # (1, vocab)
    spb = saved.tokenizer.steps_per_beat
    if prompt is None:
        prompt = np.full((batch, 1), vocab.index[SEP], dtype=np.int32)
    width = prompt.shape[1]
    starts = np.array([width - n for n in prompt_lengths] if prompt_lengths is not None else [0] * batch, np.int32)

    def advance(token: tf.Tensor, states: list[list[tf.Tensor]]) -> tuple[tf.Tensor, list[list[tf.Tensor]]]:
        x = embedding(token)
        new_states = []
        for cell, state in zip(cells, states, strict=True):
            x, state = cell(x, state, training=False)
            new_states.append(state)
        return x, new_states

    def track(token: tf.Tensor, grammar_state: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, ...]:
        kind, meter, position, pitch, top = grammar_state
        k, v = tf.gather(kinds, token), tf.gather(values, token)
        meter = tf.where(k == METER, v, meter)
        position = tf.where(k == BAR_KIND, -1, tf.where(k == POS, v, position))
        pitch = tf.where(k == POS, 128, tf.where(k == PITCH, v, pitch))
        top = tf.where((kind == POS) & (k == PITCH), v, top)  # the first pitch at a position is its highest
        return k, meter, position, pitch, top

    def mask(grammar_state: tuple[tf.Tensor, ...]) -> tf.Tensor:
        kind, meter, position, pitch, top = grammar_state
        allowed = tf.gather(tf.gather(follows, kind), kinds, axis=1) > 0  # (batch, vocab)
        later = (values[None, :] > position[:, None]) & (values[None, :] < (meter * spb)[:, None])
        lower = values[None, :] < pitch[:, None]
        allowed &= tf.where(kinds[None, :] == POS, later, True)
        allowed &= tf.where(kinds[None, :] == PITCH, lower, True)
        return tf.where(allowed, 0.0, -1e9)

    def wait(grammar_state: tuple[tf.Tensor, ...]) -> tf.Tensor:
        """Minus the beats each position token (or the next bar) leaves until the next onset."""
        kind, meter, position, pitch, top = grammar_state
        to_position = values[None, :] - position[:, None]
        to_bar = (meter * spb - position)[:, None] + tf.zeros_like(to_position)
        gap = tf.where(kinds[None, :] == POS, to_position, tf.where(kinds[None, :] == BAR_KIND, to_bar, 0))
        return -tf.cast(gap, tf.float32) / spb

    def top_moves(grammar_state: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, tf.Tensor]:
        """-1 on each pitch token that, as the next top note, would leap from the one before, and -1 on each
        that would repeat it; 0 elsewhere."""
        kind, meter, position, pitch, top = grammar_state
        distance = tf.abs(values[None, :] - top[:, None])
        next_top = (kinds[None, :] == PITCH) & ((kind == POS) & (top >= 0))[:, None]
        return -tf.cast(next_top & (distance > LEAP), tf.float32), -tf.cast(next_top & (distance == 0), tf.float32)

    def total_pitch(logits: tf.Tensor) -> tf.Tensor:
        """The log of the (unnormalised) probability of all pitch tokens, per row."""
        return tf.reduce_logsumexp(tf.where(pitch_tokens, logits, -1e9), axis=-1, keepdims=True)

    @tf.function(reduce_retracing=True)
    def run(
        prompt_ids: tf.Tensor,
        starts: tf.Tensor,
        steps: tf.Tensor,
        temperature: tf.Tensor,
        top_p: tf.Tensor,
        seed: tf.Tensor,
    ) -> tf.Tensor:
        states = [[tf.zeros((batch, c.units)), tf.zeros((batch, c.units))] for c in cells]
        out = tf.zeros((batch, cells[-1].units))
        zeros = tf.zeros((batch,), tf.int32)
        grammar_state = (zeros + SPECIAL, zeros + 4, zeros - 1, zeros + 128, zeros - 1)
        for i in tf.range(tf.shape(prompt_ids)[1]):  # prime the states on the prompt
            primed, new_states = advance(prompt_ids[:, i], states)
            live = (i >= starts)[:, None]  # rows whose prompt has begun
            out = tf.where(live, primed, out)
            states = [[tf.where(live, a, b) for a, b in zip(new, old, strict=True)] for new, old in zip(
                new_states, states, strict=True)]  # fmt: skip
            grammar_state = track(prompt_ids[:, i], grammar_state)
        tokens = tf.TensorArray(tf.int32, size=steps)
        for i in tf.range(steps):
            leaps, repeats = top_moves(grammar_state)
            lifted = bias + hurry * wait(grammar_state) + leaping * leaps + repeating * repeats + mask(grammar_state)
            network = dense(out) / temperature
            plain = network + lifted
            sharp = network * sharpen + lifted
            shift = total_pitch(plain) - total_pitch(sharp)  # the pitches' total probability kept
            logits = tf.where(pitch_tokens, sharp + shift, plain)
            probs = tf.nn.softmax(logits)
            sorted_probs = tf.sort(probs, direction="DESCENDING")
            cumulative = tf.cumsum(sorted_probs, axis=-1)
            cutoff = tf.reduce_min(
                tf.where(cumulative - sorted_probs < top_p, sorted_probs, 1.0), axis=-1, keepdims=True
            )
            logits = tf.where(probs >= cutoff, logits, -1e9)
            step_seed = tf.stack([seed, tf.cast(i, tf.int32)])
            token = tf.cast(tf.random.stateless_categorical(logits, 1, seed=step_seed)[:, 0], tf.int32)
            tokens = tokens.write(i, token)
            grammar_state = track(token, grammar_state)
            out, states = advance(token, states)
        return tf.transpose(tokens.stack())

    result = run(
        tf.constant(prompt, tf.int32),
        tf.constant(starts, tf.int32),
        tf.constant(steps, tf.int32),
        tf.constant(temperature, tf.float32),
        tf.constant(top_p, tf.float32),
        tf.constant(seed, tf.int32),
    )
    return result.numpy()
