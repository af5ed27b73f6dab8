"""The service's numbers in the Prometheus text format (`GET /metrics`).

Per-frame values (frames, fps, persons, stage latencies, events) are recorded as they happen; the
counts kept by the sources and sinks themselves (dropped frames, reconnects, delivered and dropped
events) are read when Prometheus scrapes, so nothing is counted twice.
"""

import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from actionlstm import __version__

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Counts(Collector):
    """Counts that live in the sources and sinks, read at scrape time."""

    def __init__(self, sources: Callable[[], Iterable], sinks: Callable[[], Iterable]):
        self.sources = sources
        self.sinks = sinks

    def collect(self):
        dropped = CounterMetricFamily(
            "actionlstm_dropped_frames", "Live frames replaced by a newer one before the pipeline read them", labels=["source"]
        )
        reconnects = CounterMetricFamily("actionlstm_reconnects", "Times a source came back after an outage", labels=["source"])
        up = GaugeMetricFamily("actionlstm_source_up", "1 while the source is open and delivering", labels=["source"])
        for source in self.sources():
            dropped.add_metric([source.name], source.dropped)
            reconnects.add_metric([source.name], source.reconnects)
            up.add_metric([source.name], 1.0 if source.state == "running" else 0.0)
        delivered = CounterMetricFamily("actionlstm_sink_delivered", "Events a sink delivered", labels=["sink"])
        lost = CounterMetricFamily(
            "actionlstm_sink_dropped", "Events a sink dropped (queue full, receiver gone, write failed)", labels=["sink"]
        )
        for sink in self.sinks():
            delivered.add_metric([sink.name], sink.delivered)
            lost.add_metric([sink.name], sink.dropped)
        yield from (dropped, reconnects, up, delivered, lost)


class Metrics:
    def __init__(self, sources: Callable[[], Iterable], sinks: Callable[[], Iterable]):
        self.registry = CollectorRegistry(auto_describe=True)
        started = time.monotonic()
        r = self.registry
        Gauge("actionlstm_info", "The running version", ["version"], registry=r).labels(__version__).set(1)
        Gauge("actionlstm_uptime_seconds", "Seconds since the service started", registry=r).set_function(lambda: time.monotonic() - started)
        self.frames = Counter("actionlstm_frames", "Frames processed", ["source"], registry=r)
        self.fps = Gauge("actionlstm_fps", "Frames processed per second (smoothed)", ["source"], registry=r)
        self.persons = Gauge("actionlstm_persons", "Persons in view", ["source"], registry=r)
        self.pose = Histogram("actionlstm_pose_seconds", "Pose network time per frame", ["source"], buckets=LATENCY_BUCKETS, registry=r)
        self.classify = Histogram(
            "actionlstm_classify_seconds", "Action classifier time per frame", ["source"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.latency = Histogram(
            "actionlstm_latency_seconds", "End to end: frame captured to its result", ["source"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.events = Counter("actionlstm_events", "Events fired", ["source", "label"], registry=r)
        self.clients = Gauge("actionlstm_stream_clients", "Open video and event streams", registry=r)
        r.register(_Counts(sources, sinks))

    def text(self) -> bytes:
        return generate_latest(self.registry)
