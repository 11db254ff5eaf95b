"""gunicorn settings shared by every way SecondRead is served (``--config config/gunicorn_settings.py``).

The access log records the path without its query string and no Referer: query strings carry
password-reset keys, invitation tokens and signed-file tokens, which must not end up in logs.
"""

# %(U)s is the path without the query string; %(r)s (the default's request line) would keep it.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'
