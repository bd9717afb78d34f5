"""`ivr models download`: the official small Vosk models for telephone audio, verified by a pinned SHA-256.

The digests were taken from a public project that pinned them by downloading and hashing each archive; they could
not be re-checked where this was written (no route to alphacephei.com). A mismatch refuses the archive."""
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
    sha256: str
    folder: str


MODELS = {
    "en-us": ModelFile("https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip",
                       "30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498",
                       "vosk-model-small-en-us-0.15"),
    "de-de": ModelFile("https://alphacephei.com/vosk/models/vosk-model-small-de-0.15.zip",
                       "b7e53c90b1f0a38456f4cd62b366ecd58803cd97cd42b06438e2c131713d5e43",
                       "vosk-model-small-de-0.15"),
}


def verify(archive: Path, model: ModelFile) -> str:
    """Refuse an archive whose SHA-256 differs from the pinned one; return the digest."""
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != model.sha256:
        raise ValueError(f"{model.url}: sha256 {digest}, expected {model.sha256}; not installed")
    return digest


def download(language: str, target: Path) -> Path:
    """Fetch, verify and unpack a model; returns its directory (for IVR_VOSK_MODEL)."""
    model = MODELS[language.lower()]
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "model.zip"
        with urllib.request.urlopen(model.url, timeout=60) as response, open(archive, "wb") as out:
            shutil.copyfileobj(response, out)
        verify(archive, model)
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(target)
    return target / model.folder
