"""``python app.py``: the demo borough, the scheduler and the web server in one process.

Production runs ``gunicorn app:server`` (several workers) and one ``csc-dashboard scheduler``.
"""
