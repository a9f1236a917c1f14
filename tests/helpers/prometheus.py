"""Reading a Prometheus ``/metrics`` page with prometheus_client's own parser."""
from __future__ import annotations

import time
from typing import Callable

import requests
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted label pairs): value}`` of every sample at ``url``."""
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    assert response.headers["Content-Type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    """One sample's value; 0 when the page has no such sample (a label never seen)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape_until(url: str, done: Callable[[dict], bool], timeout: float = 30) -> dict:
    """Scrape ``url`` until ``done(samples)``: the log lines behind some figures arrive a
    moment after the answers. The last scrape is returned either way, for the asserts."""
    deadline = time.monotonic() + timeout
    samples = scrape(url)
    while not done(samples) and time.monotonic() < deadline:
        time.sleep(0.2)
        samples = scrape(url)
    return samples
