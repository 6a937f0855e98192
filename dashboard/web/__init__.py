"""The web app: Dash pages declared in ``layouts/``, generic callbacks and Flask routes.

Build it with ``dashboard.web.app.create_app(settings)``; nothing is created at import time.
"""
