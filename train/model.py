"""The stacked LSTM over note tokens, its saved form, and a grammar-masked, stateful batch sampler."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from train.profile import LEAP, MAJOR
from train.tokens import BAR, TokenizerConfig
from train.vocab import SEP, Vocabulary
from transcribe.third_party import import_tensorflow


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild and use a trained model; saved as config.json beside the weights."""

    vocab_size: int
    embedding: int = 128
    units: tuple[int, ...] = (256, 256)  # one LSTM layer per entry
    dropout: float = 0.2
    seq_len: int = 192
    learning_rate: float = 2e-3
    tempos: list[float] = field(default_factory=list)  # the training pieces' tempos, drawn per track
    styles: dict[str, list[float]] = field(default_factory=dict)  # style -> its pieces' tempos
    # style -> its pieces' opening tokens (meter and key): a track takes one, so it sits where its playlist does
    headers: dict[str, list[list[str]]] = field(default_factory=dict)
    # style -> each of those pieces' register (its lowest and highest pitch token), in the same order
    registers: dict[str, list[list[int]]] = field(default_factory=dict)
    tokens_per_bar: float = 24.0  # mean tokens per bar in training, to size generation
    recurrence: dict[str, float] = field(default_factory=dict)  # style -> share of its pieces' bars that recur
    grooves: dict[str, dict[str, Any]] = field(default_factory=dict)  # style -> its drums (transcribe.groove)
    wide_leaps: dict[str, float] = field(default_factory=dict)  # style -> share of top-line leaps over an octave
    repeats: dict[str, float] = field(default_factory=dict)  # style -> share of top-line notes that repeat the last
    sounds: dict[str, dict[str, float]] = field(default_factory=dict)  # style -> centroid and percussive share
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)  # style -> its profile (train.profile)
    lifts: dict[str, dict[str, float]] = field(default_factory=dict)  # style -> its sampler's Lift (train.calibrate)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return cls(**{**data, "units": tuple(data["units"])})


def build_model(config: ModelConfig) -> Any:
    import_tensorflow()  # once per process, without its known start-up errors
    import tensorflow as tf

    tf.keras.utils.set_random_seed(config.seed)
    inputs = tf.keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = tf.keras.layers.Embedding(config.vocab_size, config.embedding, name="embedding")(inputs)
    for number, units in enumerate(config.units):
        x = tf.keras.layers.LSTM(units, return_sequences=True, name=f"lstm_{number}")(x)
        x = tf.keras.layers.Dropout(config.dropout, name=f"dropout_{number}")(x)
    logits = tf.keras.layers.Dense(config.vocab_size, name="logits")(x)
    model = tf.keras.Model(inputs, logits, name="tunesmith_lstm")
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=config.learning_rate, clipnorm=1.0),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["sparse_categorical_accuracy"],
    )
    return model


def warm_start_weights(model: Any, vocab: Vocabulary, previous: SavedModel) -> int:
    """Copy ``previous``'s weights into ``model`` where they fit; return how many tokens carried over.

    The LSTM layers carry over whole when their sizes match; the embedding rows and the output
    layer's columns carry over token by token (a token new to this vocabulary, such as a new
    style, keeps its fresh initialisation). Different layer sizes: nothing carries over, 0.
    """
    old = previous.model
    sizes = (model.get_layer("embedding").output_dim, tuple(_lstm_units(model)))
    if sizes != (previous.config.embedding, tuple(previous.config.units)):
        return 0
    shared = [(i, previous.vocab.index[t]) for i, t in enumerate(vocab.tokens) if t in previous.vocab.index]
    if not shared:
        return 0
    new_rows, old_rows = (np.array(side) for side in zip(*shared, strict=True))
    (embedding,) = model.get_layer("embedding").get_weights()
    embedding[new_rows] = old.get_layer("embedding").get_weights()[0][old_rows]
    model.get_layer("embedding").set_weights([embedding])
    for number in range(len(previous.config.units)):
        name = f"lstm_{number}"
        model.get_layer(name).set_weights(old.get_layer(name).get_weights())
    kernel, bias = model.get_layer("logits").get_weights()
    old_kernel, old_bias = old.get_layer("logits").get_weights()
    kernel[:, new_rows], bias[new_rows] = old_kernel[:, old_rows], old_bias[old_rows]
    model.get_layer("logits").set_weights([kernel, bias])
    return len(shared)


def _lstm_units(model: Any) -> list[int]:
    return [layer.units for layer in model.layers if layer.name.startswith("lstm_")]


@dataclass
class SavedModel:
    config: ModelConfig
    vocab: Vocabulary
    tokenizer: TokenizerConfig
    model: Any

    def save(self, folder: Path, *, extra: dict[str, Any] | None = None) -> Path:
        """Weights, vocabulary, tokenizer and config together in ``folder`` (a temp folder, then renamed).

        ``extra`` files (name -> JSON-able data) are written beside them, such as the training settings.
        """
        tmp = folder.with_name(f".{folder.name}.tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(str(tmp / "weights.h5"))
        self.vocab.save(tmp / "vocab.json")
        self.tokenizer.save(tmp / "tokenizer.json")
        (tmp / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2), encoding="utf-8")
        for name, data in (extra or {}).items():
            (tmp / name).write_text(json.dumps(data, indent=2), encoding="utf-8")
        tmp.replace(folder)
        return folder

    @classmethod
    def load(cls, folder: Path) -> SavedModel:
        config = ModelConfig.from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8")))
        model = build_model(config)
        model.load_weights(str(folder / "weights.h5"))
        return cls(
            config=config,
            vocab=Vocabulary.load(folder / "vocab.json"),
            tokenizer=TokenizerConfig.load(folder / "tokenizer.json"),
            model=model,
        )


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
        return cls.from_knobs(config.lifts.get(style, {}))

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
