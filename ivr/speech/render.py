"""Render one prompt with pyttsx3 (espeak-ng) to a WAV file. Run as a child process per prompt: the driver can
hang on a second runAndWait() in one process, and a child can be killed on timeout.

    python -m ivr.speech.render <voice> <rate> <out.wav>   (text on stdin)
"""
from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    import pyttsx3

    voice, rate, out = argv
    engine = pyttsx3.init("espeak")
    ids = [v.id for v in engine.getProperty("voices")]
    match = next((i for i in ids if i == voice), None) or next((i for i in ids if i.endswith("/" + voice)), None)
    if match:
        engine.setProperty("voice", match)
    engine.setProperty("rate", int(rate))
    engine.save_to_file(sys.stdin.read(), out)
    engine.runAndWait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
