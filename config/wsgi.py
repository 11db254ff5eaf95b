import os

from django.core.wsgi import get_wsgi_application

from config.tracing import tracing_start

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
# Before the application loads: the tracing middleware is added to the settings' MIDDLEWARE.
tracing_start(service="secondread-web")
application = get_wsgi_application()
