"""Code that the Rasa server loads: it runs in Rasa's own environment (.venv-rasa,
Python 3.10), so it imports nothing from `bot/` (which needs Python 3.11).

- `stores`: the tracker and lock stores endpoints.yml names (scale-out fixes).
- `channel`: the REST channel credentials.yml names, which refuses calls without the
  internal token.
- `__main__`: `python -m rasa_plugins run ...` starts `rasa run` with the HTTP API's
  token read from the environment, so the token is never on a command line.
"""
