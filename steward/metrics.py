"""What an operator reads at GET /metrics (Prometheus): traffic, latency, queues, jobs.

One registry per app, so two apps in one process (tests) never share counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# From a millisecond to a minute: webhook commits, processing and provider calls all fit.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.inbound = Counter(
            "steward_inbound_messages", "Messages received", ["channel", "result"], registry=r
        )
        self.rejected = Counter(
            "steward_rejected_requests", "Webhook requests refused", ["reason"], registry=r
        )
        self.processed = Counter(
            "steward_processed_messages", "Messages decided, by intent", ["intent"], registry=r
        )
        self.processing_errors = Counter(
            "steward_processing_errors", "Messages whose processing raised", registry=r
        )
        self.webhook_commit = Histogram(
            "steward_webhook_commit_seconds",
            "From webhook arrival to its row being durable",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.processing = Histogram(
            "steward_processing_seconds",
            "From a message being stored to its decision being committed",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.sends = Counter(
            "steward_sends",
            "Send attempts by channel and result",
            ["channel", "result"],
            registry=r,
        )
        self.provider_latency = Histogram(
            "steward_provider_seconds",
            "Time the provider took to answer a send",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.retries = Counter(
            "steward_send_retries", "Sends put back for a later attempt", ["channel"], registry=r
        )
        self.outbox_depth = Gauge(
            "steward_outbox_messages", "Outbox rows by status", ["status"], registry=r
        )
        self.job_runs = Counter(
            "steward_job_runs", "Scheduled job runs", ["job", "result"], registry=r
        )
        self.job_messages = Counter(
            "steward_job_messages", "Messages queued by scheduled jobs", ["job"], registry=r
        )
