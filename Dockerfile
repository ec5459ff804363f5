# One image for the web (daphne) and the run workers; see compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/data

# weasyprint (PDF exports) needs pango/harfbuzz and at least one font family.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Static files are collected at build time into DATA_DIR/static (served by whitenoise).
# DEBUG=1 only so settings import without a SECRET_KEY during the build; STATIC_MANIFEST=1 writes the
# content-hashed names and their gzip/brotli copies that production (DEBUG off) serves.
RUN DEBUG=1 STATIC_MANIFEST=1 python manage.py collectstatic --noinput \
 && useradd --uid 1000 --create-home --shell /usr/sbin/nologin app \
 && mkdir -p /data/workspaces /data/media \
 && chown -R app:app /data

USER app
EXPOSE 8000
# No --proxy-headers: daphne would take the client-supplied left end of X-Forwarded-For as the address;
# the app reads the header itself, only behind TRUSTED_PROXY_COUNT proxies (accounts/throttling.py).
# --websocket_connect_timeout: daphne drops a websocket whose handshake (the consumer's access check) takes over
# 5 s, which a burst of people opening sessions on a busy host reached; a browser would rather wait.
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--websocket_connect_timeout", "30", "codingagent.asgi:application"]
