"""gunicorn settings for csc-dashboard's web tier: ``gunicorn -c deploy/gunicorn.conf.py app:server``.

The web workers only read the snapshot store; the refresher is its own process
(``csc-dashboard scheduler``), so nothing here starts a scheduler. Command-line flags override
these values (``-w``, ``-b``); gunicorn also reads ``WEB_CONCURRENCY`` and ``GUNICORN_CMD_ARGS``.
"""

import os

from dashboard.config import Settings
from dashboard.logging_setup import gunicorn_logconfig

# Every worker builds its own app from app.py's lazy ``server``: no app (and no scheduler) is
# created in the master and inherited across fork.
wsgi_app = "app:server"
preload_app = False

bind = ["127.0.0.1:8050"]  # behind the council's reverse proxy (TLS, single sign-on header)
# Four processes for a 2-core server: page views are CPU-bound Python (each worker has its own
# GIL), and a fourth keeps answering polls while the others build a new snapshot's tiles.
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
# Threads let one worker hold many browsers' keep-alive connections and overlap their small
# store queries (the version check is one indexed query); CPU work still takes turns.
worker_class = "gthread"
threads = 4
# 700 browsers poll every 10 s; keep their connections open between polls.
keepalive = 30
worker_connections = 1000
# A worker silent for this long is killed and replaced. The slowest request is a borough-wide
# drill-down export at regional scale (seconds); a login's scrypt check is about 0.2 s.
timeout = 60
graceful_timeout = 30
# Heartbeat files in memory: a slow disk must not make the master kill healthy workers.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# The reverse proxy on the same host may say who the client is (and, in header mode, who the
# user is); the proxy must strip those headers from what clients send.
forwarded_allow_ips = "127.0.0.1"

# JSON lines on stderr for gunicorn's error and access logs and the app's own loggers.
logconfig_dict = gunicorn_logconfig(Settings().log_level)
# Read by logging_setup.AccessJsonFormatter field by field; the text is only a fallback.
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms'


def post_worker_init(worker):  # noqa: ANN001, ANN201 (gunicorn's hook signature)
    """Read and index the latest snapshots before the worker takes its first request, so the
    first page view after a deploy or a worker restart does not wait for them (seconds at
    regional scale), then keep doing so for each new snapshot as it lands
    (``DASHBOARD_PRELOAD_SECONDS``). A store that is down is no reason not to start: requests
    say so, and the preloader keeps trying."""
    from dashboard.web import context

    web = context.of(worker.wsgi)
    try:
        web.data.warm()
    except Exception:
        worker.log.exception("warm-up failed; the first request will load the snapshots")
    if web.settings.preload_seconds > 0:
        web.data.preload(web.settings.preload_seconds)


# gunicorn's control socket (``gunicornc``) defaults to one path per user, which two app servers
# on one host would fight over; nothing here uses it.
control_socket_disable = True
