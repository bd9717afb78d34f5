import hashlib

import pytest

from ivr.speech.models import MODELS, ModelFile, verify


def test_download_verification_checks_size_and_digest(tmp_path):
    archive = tmp_path / "m.zip"
    archive.write_bytes(b"x" * 10)
    model = ModelFile("https://example.invalid/m.zip", 10, "m")
    digest = hashlib.sha256(b"x" * 10).hexdigest()
    assert verify(archive, model, None) == digest
    assert verify(archive, model, digest.upper()) == digest
    with pytest.raises(ValueError, match="sha256"):
        verify(archive, model, "0" * 64)
    with pytest.raises(ValueError, match="expected 11"):
        verify(archive, ModelFile(model.url, 11, "m"), None)


def test_official_small_models_are_listed():
    assert set(MODELS) == {"en-us", "de-de"}
    assert all(m.url.startswith("https://alphacephei.com/vosk/models/vosk-model-small-") for m in MODELS.values())
