import hashlib

import pytest

from ivr.speech.models import MODELS, ModelFile, verify


def test_download_is_refused_unless_the_digest_matches(tmp_path):
    archive = tmp_path / "m.zip"
    archive.write_bytes(b"model bytes")
    good = ModelFile("https://example.invalid/m.zip", hashlib.sha256(b"model bytes").hexdigest(), "m")
    assert verify(archive, good) == good.sha256
    with pytest.raises(ValueError, match="not installed"):
        verify(archive, ModelFile(good.url, "0" * 64, "m"))


def test_official_small_models_are_pinned():
    assert set(MODELS) == {"en-us", "de-de"}
    for model in MODELS.values():
        assert model.url.startswith("https://alphacephei.com/vosk/models/vosk-model-small-")
        assert len(model.sha256) == 64 and int(model.sha256, 16) >= 0
