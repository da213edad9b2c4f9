"""Gunicorn settings: ``gunicorn -c gunicorn.conf.py`` alone starts Hookrunner.

The settings live in :mod:`app.gunicorn_config`, which is installed with the
package (``gunicorn -c python:app.gunicorn_config`` from anywhere, or
``hookrunner serve``); this file is that module for a checkout.
"""

from app.gunicorn_config import *  # noqa: F403
