"""`actionlstm serve`: the pipeline as a long-running service beside a camera. It imports only
downward (`pipeline`, `actionlstm`); nothing else in `pipeline` imports it.

    supervised.py  sources that outlive their device: reopened with backoff, files replayed
    snapshots.py   the bounded folder of event snapshots
    transports.py  where events go, one interface (`EventSink`) for every transport: a JSONL file, webhooks, MQTT
    metrics.py     the Prometheus metrics
    hub.py         what the service knows now (frames, persons, events, timeline), shared by the loop and the app
    app.py         the web page, JSON API, streams and metrics behind a token (Starlette)
    server.py      the pipeline loop, the ASGI server beside it, and a clean stop

Alert rules and events (`pipeline.rules`, `pipeline.alerts`) need no server: `actionlstm run --alert
--events` and `ActionRecognizer.events` use them too.
"""
