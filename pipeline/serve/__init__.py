"""`actionlstm serve`: the pipeline as a long-running service beside a camera.

    rules.py      alert rules (`--alert LABEL[>=PROB][:SECONDS]`, `--rules FILE`)
    alerts.py     events: a person's smoothed top-1 label holding a rule, once per episode
    snapshots.py  the bounded folder of event snapshots
    sinks.py      where events go: a JSONL file, webhooks, MQTT
    sources.py    sources that outlive their device: reopened with backoff, files replayed
    hub.py        what the service knows now (frames, persons, events, timeline) and its metrics
    app.py        the web page, JSON API, streams and metrics behind a token (Starlette)
    server.py     the pipeline loop, the ASGI server beside it, and a clean stop

Rules, alerts, snapshots and the JSONL sink need no server: `actionlstm run --alert --events` and
`ActionRecognizer.events` use them too.
"""
