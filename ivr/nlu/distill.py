"""Distil a shallower sentence encoder from all-MiniLM-L6-v2: a few of its transformer layers, trained so the mean
of their outputs matches the full network's sentence embedding (cosine loss) on unlabelled sentences.

How `encoder.DISTILLED` was made (`ivr encoder distill`); needs PyTorch (`pip install torch`), which the service
itself never imports. The word embeddings stay frozen, so the result holds only the layers (~10 MB in float16)."""
from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

HEADS = 12
MAX_TOKENS = 64


def distill(texts: Sequence[str], model_dir: Path, out: Path, *, keep: Sequence[int] = (1, 3, 5),
            epochs: float = 6, learning_rate: float = 2e-4, batch_size: int = 32, seed: int = 0,
            log: Callable[[str], None] = print) -> None:
    """Train the teacher's layers `keep` (renumbered from 0) to give its embeddings of `texts`; write them to `out`."""
    import torch  # type: ignore[import-not-found]
    import torch.nn.functional as F  # type: ignore[import-not-found]  # noqa: N812
    from safetensors.numpy import load_file, save_file
    from tokenizers import Tokenizer

    torch.manual_seed(seed)
    teacher = {k: torch.from_numpy(v) for k, v in load_file(str(model_dir / "model.safetensors")).items()
               if v.dtype == np.float32}
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.no_padding()
    ids = [tokenizer.encode(text).ids for text in texts]

    def forward(params: dict, layers: Sequence[int], tokens, mask):
        x = (params["embeddings.word_embeddings.weight"][tokens]
             + params["embeddings.position_embeddings.weight"][:tokens.shape[1]]
             + params["embeddings.token_type_embeddings.weight"][0])
        x = F.layer_norm(x, x.shape[-1:], params["embeddings.LayerNorm.weight"], params["embeddings.LayerNorm.bias"],
                         1e-12)
        padding = (1.0 - mask[:, None, None, :]) * -1e4
        for index in layers:
            x = _layer(F, torch, x, padding, params, f"encoder.layer.{index}.")
        weights = mask[..., None]
        return (x * weights).sum(1) / weights.sum(1)

    started = time.perf_counter()
    targets = torch.zeros(len(texts), teacher["embeddings.word_embeddings.weight"].shape[1])
    with torch.no_grad():
        for rows, tokens, mask in _batches(torch, ids, 64):
            targets[rows] = forward(teacher, range(_depth(teacher)), tokens, mask)
    log(f"teacher embeddings of {len(texts)} sentences: {time.perf_counter() - started:.0f} s")

    student = {k: v for k, v in teacher.items() if k.startswith("embeddings.")}
    for new, old in enumerate(keep):
        prefix = f"encoder.layer.{old}."
        student |= {k.replace(prefix, f"encoder.layer.{new}."): v.clone().requires_grad_(True)
                    for k, v in teacher.items() if k.startswith(prefix)}
    trained = [v for k, v in student.items() if k.startswith("encoder.")]
    optimiser = torch.optim.AdamW(trained, lr=learning_rate, weight_decay=0.01)
    batches = _batches(torch, ids, batch_size)
    steps = int(epochs * len(batches))
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, (steps - step) / steps))
    rng, step, started = random.Random(seed), 0, time.perf_counter()
    while step < steps:
        rng.shuffle(batches)
        for rows, tokens, mask in batches[:steps - step]:
            loss = (1 - F.cosine_similarity(forward(student, range(len(keep)), tokens, mask), targets[rows])).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            step += 1
            if step % 500 == 0 or step == steps:
                log(f"step {step}/{steps}: 1 - cosine {loss.item():.4f} ({time.perf_counter() - started:.0f} s)")
    save_file({k: v.detach().half().numpy() for k, v in student.items() if k.startswith("encoder.")}, str(out))


def _depth(weights: dict) -> int:
    return len({k.split(".")[2] for k in weights if k.startswith("encoder.layer.")})


def _batches(torch, ids: list[list[int]], size: int) -> list:
    """Sentences of similar length together (little padding): (row numbers, token ids, mask) per batch."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    batches = []
    for start in range(0, len(order), size):
        rows = order[start:start + size]
        width = max(len(ids[i]) for i in rows)
        tokens = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width)
        for r, i in enumerate(rows):
            tokens[r, :len(ids[i])] = torch.tensor(ids[i])
            mask[r, :len(ids[i])] = 1
        batches.append((rows, tokens, mask))
    return batches


def _layer(F, torch, x, padding, p: dict, prefix: str):  # noqa: N803
    """One BERT block, as `encoder.bert_graph` writes it for onnxruntime."""
    batch, length, dim = x.shape
    size = dim // HEADS

    def dense(name: str, value):
        return F.linear(value, p[f"{prefix}{name}.weight"], p[f"{prefix}{name}.bias"])

    def heads(name: str):
        return dense(f"attention.self.{name}", x).view(batch, length, HEADS, size).transpose(1, 2)

    scores = heads("query") @ heads("key").transpose(-1, -2) / math.sqrt(size) + padding
    context = (torch.softmax(scores, -1) @ heads("value")).transpose(1, 2).reshape(batch, length, dim)
    x = F.layer_norm(x + dense("attention.output.dense", context), (dim,),
                     p[f"{prefix}attention.output.LayerNorm.weight"], p[f"{prefix}attention.output.LayerNorm.bias"],
                     1e-12)
    up = F.gelu(dense("intermediate.dense", x))
    return F.layer_norm(x + dense("output.dense", up), (dim,), p[f"{prefix}output.LayerNorm.weight"],
                        p[f"{prefix}output.LayerNorm.bias"], 1e-12)
