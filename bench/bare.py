"""A bare Flask app with the product's trivial route (``GET /health/live``, same body): what
Flask and gunicorn cost alone. bench/api.py serves it with the Procfile's gunicorn settings
and compares the product's trivial route with it."""

from flask import Flask

app = Flask(__name__)


@app.get("/health/live")
def live():
    return {"status": "ok"}
