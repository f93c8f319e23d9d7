"""The LSTM over note/chord tokens, its saved form, and a stateful batch sampler."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from train.vocab import Vocabulary

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild and use a trained model; saved as config.json beside the weights."""

    vocab_size: int
    embedding: int = 96
    units: int = 256
    dropout: float = 0.2
    seq_len: int = 64
    learning_rate: float = 3e-3
    temperature: float = 1.0  # sampling defaults
    top_p: float = 0.95
    tempos: list[float] = field(default_factory=list)  # the training pieces' tempos, drawn per track
    styles: dict[str, list[float]] = field(default_factory=dict)  # style -> its pieces' tempos
    steps_per_token: float = 2.0  # mean grid steps per token in training, to size generation
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def build_model(config: ModelConfig) -> Any:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(config.seed)
    inputs = tf.keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = tf.keras.layers.Embedding(config.vocab_size, config.embedding, name="embedding")(inputs)
    x = tf.keras.layers.LSTM(config.units, return_sequences=True, name="lstm")(x)
    x = tf.keras.layers.Dropout(config.dropout, name="dropout")(x)
    logits = tf.keras.layers.Dense(config.vocab_size, name="logits")(x)
    model = tf.keras.Model(inputs, logits, name="tunesmith_lstm")
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["sparse_categorical_accuracy"],
    )
    return model


def warm_start_weights(model: Any, vocab: Vocabulary, previous: SavedModel) -> int:
    """Copy ``previous``'s weights into ``model`` where they fit; return how many tokens carried over.

    The LSTM's weights carry over whole when the sizes match; the embedding rows and the output
    layer's columns carry over token by token (a token new to this vocabulary keeps its fresh
    initialisation). Different layer sizes: nothing carries over and 0 is returned.
    """
    old = previous.model
    if (previous.config.embedding, previous.config.units) != (
        model.get_layer("embedding").output_dim,
        model.get_layer("lstm").units,
    ):
        return 0
    shared = [(i, previous.vocab.index[t]) for i, t in enumerate(vocab.tokens) if t in previous.vocab.index]
    if not shared:
        return 0
    new_rows, old_rows = (np.array(side) for side in zip(*shared, strict=True))
    (embedding,) = model.get_layer("embedding").get_weights()
    embedding[new_rows] = old.get_layer("embedding").get_weights()[0][old_rows]
    model.get_layer("embedding").set_weights([embedding])
    model.get_layer("lstm").set_weights(old.get_layer("lstm").get_weights())
    kernel, bias = model.get_layer("logits").get_weights()
    old_kernel, old_bias = old.get_layer("logits").get_weights()
    kernel[:, new_rows], bias[new_rows] = old_kernel[:, old_rows], old_bias[old_rows]
    model.get_layer("logits").set_weights([kernel, bias])
    return len(shared)


@dataclass
class SavedModel:
    config: ModelConfig
    vocab: Vocabulary
    model: Any

    def save(self, folder: Path) -> Path:
        """Weights, vocabulary and config together in ``folder`` (written to a temp folder, then renamed)."""
        tmp = folder.with_name(f".{folder.name}.tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(str(tmp / "weights.h5"))
        self.vocab.save(tmp / "vocab.json")
        (tmp / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2), encoding="utf-8")
        tmp.replace(folder)
        return folder

    @classmethod
    def load(cls, folder: Path) -> SavedModel:
        config = ModelConfig(**json.loads((folder / "config.json").read_text(encoding="utf-8")))
        model = build_model(config)
        model.load_weights(str(folder / "weights.h5"))
        return cls(config=config, vocab=Vocabulary.load(folder / "vocab.json"), model=model)


def sample(
    saved: SavedModel,
    *,
    batch: int,
    steps: int,
    temperature: float,
    top_p: float,
    seed: int,
    prompt: np.ndarray | None = None,
) -> np.ndarray:
    """Sample ``batch`` sequences of ``steps`` tokens at once, one LSTM step per token.

    The LSTM state is carried from step to step (nothing is re-read), and the whole loop
    runs inside one ``tf.function`` graph. ``prompt`` is a (batch, n) array of ids to start
    from; without one each sequence starts from the piece separator. Special tokens are
    never sampled.
    """
    import tensorflow as tf

    model, vocab = saved.model, saved.vocab
    embedding, lstm, dense = (model.get_layer(n) for n in ("embedding", "lstm", "logits"))
    units = saved.config.units
    specials = set(vocab.special_ids())
    banned = tf.constant([[-1e9 if i in specials else 0.0 for i in range(len(vocab))]])
    if prompt is None:
        prompt = np.full((batch, 1), vocab.index["<sep>"], dtype=np.int32)

    @tf.function(reduce_retracing=True)
    def run(
        prompt_ids: tf.Tensor, steps: tf.Tensor, temperature: tf.Tensor, top_p: tf.Tensor, seed: tf.Tensor
    ) -> tf.Tensor:
        h = tf.zeros((batch, units))
        c = tf.zeros((batch, units))
        out = tf.zeros((batch, units))
        for i in tf.range(tf.shape(prompt_ids)[1]):  # prime the state on the prompt
            out, (h, c) = lstm.cell(embedding(prompt_ids[:, i]), [h, c], training=False)
        tokens = tf.TensorArray(tf.int32, size=steps)
        for i in tf.range(steps):
            logits = dense(out) / temperature + banned
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
            out, (h, c) = lstm.cell(embedding(token), [h, c], training=False)
        return tf.transpose(tokens.stack())

    result = run(
        tf.constant(prompt, tf.int32),
        tf.constant(steps, tf.int32),
        tf.constant(temperature, tf.float32),
        tf.constant(top_p, tf.float32),
        tf.constant(seed, tf.int32),
    )
    return result.numpy()
