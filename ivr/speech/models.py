"""`ivr models download`: the official small Vosk models for telephone audio, verified before use.

The byte sizes are pinned from the published catalog. SHA-256 digests could not be pinned on the machines this
was written on (no route to alphacephei.com): pass `--sha256` to enforce one; the digest is always printed so it
can be pinned in MODELS."""
from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelFile:
    url: str
    size: int
    folder: str
    sha256: str | None = None


MODELS = {
    "en-us": ModelFile("https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip", 41205931,
                       "vosk-model-small-en-us-0.15"),
    "de-de": ModelFile("https://alphacephei.com/vosk/models/vosk-model-small-de-0.15.zip", 46499967,
                       "vosk-model-small-de-0.15"),
}


def verify(archive: Path, model: ModelFile, sha256: str | None) -> str:
    """Check size and (when known) digest; return the digest."""
    size = archive.stat().st_size
    if size != model.size:
        raise ValueError(f"{model.url}: {size} bytes, expected {model.size}")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    expected = sha256 or model.sha256
    if expected and digest != expected.lower():
        raise ValueError(f"{model.url}: sha256 {digest}, expected {expected}")
    return digest


def download(language: str, target: Path, *, sha256: str | None = None) -> tuple[Path, str]:
    """Fetch, verify and unpack a model; returns its directory (for IVR_VOSK_MODEL) and the archive digest."""
    model = MODELS[language.lower()]
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "model.zip"
        with urllib.request.urlopen(model.url, timeout=60) as response, open(archive, "wb") as out:
            shutil.copyfileobj(response, out)
        digest = verify(archive, model, sha256)
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(target)
    return target / model.folder, digest
