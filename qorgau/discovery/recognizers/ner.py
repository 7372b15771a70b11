"""Natasha's Russian NER (slovnet ``NewsNERTagger``), run lean: same model, same arithmetic, less overhead.

The PERSON recognizer hands Natasha short windows (a candidate and ±60 characters). For inputs that small,
slovnet's inference is dominated by overhead rather than by the network: ``np.pad`` (a Python-level
function) before each of the three convolutions, and a Viterbi decoder that builds index grids
(``np.indices`` and fancy indexing) at every token. :class:`LeanTagger` runs the very same steps with
those two replaced by equivalent operations:

* zero padding is a preallocated zero array with the input copied in — the array ``np.pad`` builds;
* the best score into each tag is ``max`` over the previous tags, where slovnet takes the element at
  ``argmax`` — the same float; back-pointers are still ``argmax`` (first maximum, as before).

Everything else (razdel tokens, the vocabularies, embeddings, convolutions, batch norm, masking, the
projection, BIO decoding) is slovnet's own code or the same NumPy calls on arrays of the same shape and
layout, so the tags are the same; tests compare both on every window of the evaluation corpora.
If slovnet's objects ever change shape, :func:`lean_tagger` returns None and the recognizer calls
Natasha's tagger as is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Span = tuple[int, int, str]


class LeanTagger:
    """``tagger.map(texts)`` → spans, for a natasha ``NewsNERTagger`` (see the module docstring)."""

    def __init__(self, tagger: object) -> None:
        infer = tagger.infer  # type: ignore[attr-defined]
        model = infer.model
        self._encoder = infer.encoder  # words → (word ids, shape ids), batches of 8, padding and mask
        self._decoder = infer.decoder  # tag ids → "B-PER" …
        self._emb = model.emb
        self._layers = [(layer.conv, layer.norm) for layer in model.encoder.layers]
        self._proj = model.head.proj
        self._transitions = model.head.crf.transitions.array
        from slovnet.bio import bio_spans
        from slovnet.token import tokenize

        self._tokenize = tokenize
        self._bio_spans = bio_spans

    def __call__(self, texts: Sequence[str]) -> list[list[Span]]:
        """(start, stop, type) spans of each text, as slovnet's ``NERInfer`` would return them."""
        tokens = [list(self._tokenize(text)) for text in texts]
        out: list[list[Span]] = []
        items = [[t.text for t in toks] for toks in tokens]
        done = 0
        for batch in self._encoder(items):
            emissions = self._forward(batch.word_id, batch.shape_id, batch.pad_mask)
            for tag_ids in _viterbi(emissions, ~batch.pad_mask, self._transitions):
                toks = tokens[done]
                tags = [self._decoder.tags_vocab.decode(i) for i in tag_ids]
                out.append([(s.start, s.stop, s.type) for s in self._bio_spans(toks, tags)])
                done += 1
        return out

    def _forward(self, word_id: np.ndarray, shape_id: np.ndarray, pad_mask: np.ndarray) -> np.ndarray:
        """``slovnet.exec.model.NER.__call__`` (embedding, CNN encoder, projection), padding done directly."""
        x = self._emb(word_id, shape_id)
        x = np.swapaxes(x, 2, 1)
        mask = np.expand_dims(pad_mask, axis=1)
        for conv, norm in self._layers:
            x = _conv1d(conv, x)
            x = x.clip(0)  # ReLU
            x = norm(x)
            x[mask.repeat(x.shape[1], axis=1)] = 0
        return self._proj(np.swapaxes(x, 2, 1))


def _conv1d(conv: object, input: np.ndarray) -> np.ndarray:
    """``slovnet.exec.model.Conv1d.__call__`` with ``np.pad(..., constant 0)`` built directly."""
    pad = conv.padding  # type: ignore[attr-defined]
    batch, channels, length = input.shape
    padded = np.zeros((batch, channels, length + 2 * pad), dtype=input.dtype)
    padded[:, :, pad:pad + length] = input
    batch_size, in_dim, seq_len = padded.shape
    batch_stride, in_stride, seq_stride = padded.strides
    unit_stride = padded.data.itemsize
    filters_count, in_dim, kernel_size = conv.weight.shape  # type: ignore[attr-defined]
    windows_count = seq_len - kernel_size + 1
    windows = np.ndarray((batch_size, windows_count, in_dim, kernel_size), dtype=padded.dtype, buffer=padded.data,
                         strides=(batch_stride, unit_stride, in_stride, seq_stride))
    windows = windows.reshape(batch_size * windows_count, in_dim * kernel_size)
    weight = conv.weight.array.reshape(filters_count, in_dim * kernel_size)  # type: ignore[attr-defined]
    output = np.matmul(windows, weight.T) + conv.bias.array  # type: ignore[attr-defined]
    output = output.reshape(batch_size, windows_count, filters_count)
    return output.swapaxes(2, 1)


def _viterbi(emissions: np.ndarray, mask: np.ndarray, transitions: np.ndarray) -> list[list[int]]:
    """``slovnet.exec.model.CRF.decode``: the best tag sequence of each batch row (first maximum on ties)."""
    batch_size, seq_len, tags_num = emissions.shape
    emissions = emissions.swapaxes(1, 0)
    mask = mask.swapaxes(1, 0)
    history = []
    score = emissions[0]
    for index in range(1, seq_len):
        scores = score.reshape(batch_size, tags_num, 1) + transitions + emissions[index].reshape(batch_size, 1, tags_num)
        history.append(scores.argmax(-2))
        score = np.where(mask[index].reshape(batch_size, 1), scores.max(-2), score)
    sizes = (mask.sum(0) - 1).tolist()
    pointers = np.stack(history).tolist() if history else []
    best_last = score.argmax(-1).tolist()
    paths = []
    for row in range(batch_size):
        best = best_last[row]
        tags = [best]
        for step in reversed(pointers[:sizes[row]]):
            best = step[row][best]
            tags.append(best)
        tags.reverse()
        paths.append(tags)
    return paths


_PROBE = ["Вчера Жаксылыков Ерлан Маратович обратился в АО «Казахтелеком» в Алматы.", "Иванов", "Директор: Сейткали А."]


def lean_tagger(tagger: object) -> LeanTagger | None:
    """A :class:`LeanTagger` for Natasha's tagger, or None if slovnet's objects are not as expected or the
    lean path does not tag a probe exactly as the tagger does (then the recognizer uses the tagger)."""
    try:
        lean = LeanTagger(tagger)
        expected = [[(s.start, s.stop, s.type) for s in markup.spans] for markup in tagger.map(_PROBE)]  # type: ignore[attr-defined]
        return lean if lean(_PROBE) == expected else None
    except Exception:  # noqa: BLE001 - another slovnet: fall back to its own tagger  # pragma: no cover
        return None
