"""Locust load for `make bench`: single-participant score requests with a partner key (payload and key from env)."""

from __future__ import annotations

import os
from pathlib import Path

from locust import FastHttpUser, constant_throughput, task

PAYLOAD = Path(os.environ["EARLYWARN_BENCH_PAYLOAD"]).read_text()
HEADERS = {"Authorization": f"Bearer {os.environ['EARLYWARN_BENCH_KEY']}", "Content-Type": "application/json"}
RATE = float(os.environ.get("EARLYWARN_BENCH_USER_RATE", "0"))


class Partner(FastHttpUser):
    wait_time = constant_throughput(RATE) if RATE > 0 else (lambda self: 0)

    @task
    def score(self) -> None:
        self.client.post("/v1/risk-scores", data=PAYLOAD, headers=HEADERS)
