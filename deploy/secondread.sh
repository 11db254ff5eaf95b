#!/bin/sh
# SecondRead's one entry point in production: the image's ENTRYPOINT, the migrate job, compose
# and the CI smoke test (tests/deploy/test_production_smoke.py) all run these exact commands.
#
#   secondread.sh collectstatic   build time: static files, compressed and hashed
#   secondread.sh migrate         once per release, before new pods: schemas, template, platform
#   secondread.sh web             gunicorn (deploy/gunicorn.conf.py): pages, APIs
#   secondread.sh uploads         the same gunicorn for the tus endpoint alone (Caddy sends
#                                 /intake/tus/ there), at a lower CPU priority
#   secondread.sh worker          Celery worker
#   secondread.sh beat            Celery beat (exactly one)
#   secondread.sh manage <command>   a management command (createoperator, export_institution…)
#   secondread.sh probe web|worker|beat   exit 0 when that process is alive (exec probes)
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"

# Prometheus' per-process files (config.metrics) for processes that fork: emptied at start.
metrics_dir() {
  PROMETHEUS_MULTIPROC_DIR="${SR_PROBE_DIR:-/tmp}/metrics-$1"
  rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
  export PROMETHEUS_MULTIPROC_DIR
}

case "${1:-web}" in
  collectstatic)
    exec "$PYTHON" manage.py collectstatic --noinput -v 0
    ;;
  migrate)
    # Shared (public) and every institution's schema, then the template new institutions are
    # cloned from, then the application's role (DATABASE_APP_URL: read/write everywhere, the
    # audit log append-only; this step runs as the owner, DATABASE_URL), then the platform's own
    # tenant row and domain. Each step is idempotent.
    "$PYTHON" manage.py migrate_schemas --noinput
    "$PYTHON" manage.py tenant_template
    "$PYTHON" manage.py db_app_role
    exec "$PYTHON" manage.py platform_bootstrap
    ;;
  web)
    metrics_dir web
    exec "$PYTHON" -m gunicorn -c deploy/gunicorn.conf.py config.wsgi:application
    ;;
  uploads)
    # Patients' uploads take all the CPU they are given (a CD arrives at the speed of the
    # network); pages must not wait behind them. So uploads have processes of their own (no
    # page shares their interpreter lock) and yield the CPU to pages: niceness here, where they
    # share a machine with web, and a smaller CPU request (Kubernetes) or cpu_shares (compose)
    # across containers. Measured with 16 slow and 20 fast uploaders
    # (tests/benchmarks/bench_slow_uploaders.py): another institution's landing page p95 782 ms
    # with one gunicorn for everything behind Caddy, 58 ms with this split.
    metrics_dir uploads
    exec nice -n "${UPLOADS_NICENESS:-10}" "$PYTHON" -m gunicorn -c deploy/gunicorn.conf.py config.wsgi:application
    ;;
  worker)
    metrics_dir worker
    exec "$PYTHON" -m celery -A config worker --loglevel INFO \
      --concurrency "${WORKER_CONCURRENCY:-4}" --hostname "worker@%h"
    ;;
  housekeeping)
    # Sweeps across every institution and usage measurement, on their own queue so they never
    # stand in front of a patient's upload (config/celery_routes.py).
    metrics_dir housekeeping
    exec "$PYTHON" -m celery -A config worker --loglevel INFO --concurrency 1 \
      --queues "${CELERY_HOUSEKEEPING_QUEUE:-${CELERY_QUEUE:-secondread}-housekeeping}" --hostname "housekeeping@%h"
    ;;
  beat)
    mkdir -p "${SR_PROBE_DIR:-/tmp}"
    exec "$PYTHON" -m celery -A config beat --loglevel INFO \
      --schedule "${SR_PROBE_DIR:-/tmp}/celerybeat-schedule"
    ;;
  manage)
    # Any management command, e.g. `secondread.sh manage createoperator you@example.com`.
    shift
    exec "$PYTHON" manage.py "$@"
    ;;
  probe)
    case "${2:?probe web|worker|beat}" in
      web)
        # /livez answers on any Host, without the database.
        exec "$PYTHON" -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('PORT', '8000'), timeout=2)"
        ;;
      *)
        exec "$PYTHON" -m config.liveness_probe "$2"
        ;;
    esac
    ;;
  *)
    echo "usage: secondread.sh collectstatic|migrate|web|uploads|worker|beat|manage <command>|probe web|worker|beat" >&2
    exit 2
    ;;
esac
