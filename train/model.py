"""The stacked LSTM over note tokens and its saved form (the sampler is ``train.sampler``)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from train.style import StyleRecord
from train.tokens import TokenizerConfig
from train.vocab import Vocabulary
from transcribe.third_party import import_tensorflow

FORMAT = 2  # the layout of config.json; a model saved in another cannot be read, only retrained


class ModelFormatError(ValueError):
    """A saved model this version cannot read: made by an older tunesmith, or its files are damaged."""


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild and use a trained model; saved as config.json beside the weights."""

    vocab_size: int
    embedding: int = 128
    units: tuple[int, ...] = (256, 256)  # one LSTM layer per entry
    dropout: float = 0.2
    seq_len: int = 192
    learning_rate: float = 2e-3
    tokens_per_bar: float = 24.0  # mean tokens per bar in training, to size generation
    styles: dict[str, StyleRecord] = field(default_factory=dict)  # one record per style (train.style)
    seed: int = 0
    format: int = FORMAT

    def style(self, name: str) -> StyleRecord:
        """The record of style ``name`` (an empty one for a style the model never measured)."""
        return self.styles.get(name) or StyleRecord(name)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**data, "units": list(self.units), "styles": {k: s.to_dict() for k, s in self.styles.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """The config saved by ``to_dict``.

        Raises:
            ModelFormatError: it was saved in another format (an older tunesmith's model).
        """
        if data.get("format") != FORMAT:
            raise ModelFormatError(f"saved in format {data.get('format', 1)}, this tunesmith reads format {FORMAT}")
        styles = {name: StyleRecord.from_dict(record) for name, record in (data.get("styles") or {}).items()}
        return cls(**{**data, "units": tuple(data["units"]), "styles": styles})


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
        """The model saved in ``folder``.

        Raises:
            ModelFormatError: a file is missing, truncated or corrupt, or was saved in another format.
        """
        try:
            config = ModelConfig.from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8")))
            model = build_model(config)
            model.load_weights(str(folder / "weights.h5"))
            vocab = Vocabulary.load(folder / "vocab.json")
            tokenizer = TokenizerConfig.load(folder / "tokenizer.json")
        except ModelFormatError as error:
            raise ModelFormatError(f"the model in {folder} cannot be read: {error}") from error
        except (OSError, ValueError, KeyError, TypeError) as error:  # h5py raises OSError for a damaged file
            what = f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"
            raise ModelFormatError(f"the model in {folder} cannot be read ({what})") from error
        if config.vocab_size != len(vocab):
            raise ModelFormatError(f"the model in {folder} cannot be read (its vocabulary does not match its weights)")
        return cls(config=config, vocab=vocab, tokenizer=tokenizer, model=model)
