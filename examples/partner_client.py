"""A partner's first client for the earlywarn API: score participants, report an outcome, post feedback, retry well.

    pip install httpx
    EARLYWARN_URL=https://earlywarn.example.org/v1 EARLYWARN_KEY=ew_... python partner_client.py days.csv

days.csv holds one row per participant and day: participant_id, date (YYYY-MM-DD) and any signals you collect
(steps, sleep_duration_h, ...; docs/data-contract.md lists them). Nothing here is specific to earlywarn's code: it
is plain HTTP, as any app would send it (docs/partners.md walks through each step).
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
import uuid
from collections import defaultdict
from typing import Any

import httpx

MAX_TRIES = 5


def call(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST with the retries the API asks for: 429 and 503 wait for Retry-After; other errors stop with the problem."""
    request_id = str(uuid.uuid4())  # the same id on every retry, so the service's logs tie them together
    for attempt in range(1, MAX_TRIES + 1):
        r = client.post(path, json=body, headers={"X-Request-ID": request_id})
        if r.status_code in (200, 202):
            return dict(r.json())
        problem = r.json() if r.headers.get("content-type", "").startswith("application/problem+json") else {}
        if r.status_code in (429, 503) and attempt < MAX_TRIES:
            wait = min(int(r.headers.get("Retry-After", "1")), 60)
            print(f"{r.status_code} {problem.get('code')}: retrying in {wait} s (try {attempt} of {MAX_TRIES})")
            time.sleep(wait)
            continue
        if r.status_code == 422:  # each error names the field and index, e.g. participants[0].days[3].date
            for e in problem.get("errors", []):
                print(f"  {e['field']}: {e['message']}")
        raise SystemExit(
            f"{r.status_code} {problem.get('code', '')}: {problem.get('detail', r.text)} ({problem.get('instance')})"
        )
    raise SystemExit("gave up after retries")


def participants_from(path: str) -> list[dict[str, Any]]:
    """The CSV as the API's participants, each with their days in date order; empty cells are missing signals."""
    days: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            pid, day = row.pop("participant_id"), {"date": row.pop("date")}
            day |= {k: float(v) for k, v in row.items() if v not in ("", None)}
            days[pid].append(day)
    return [{"participant_id": p, "days": sorted(d, key=lambda x: x["date"])} for p, d in days.items()]


def main(path: str) -> None:
    url, key = os.environ["EARLYWARN_URL"].rstrip("/"), os.environ["EARLYWARN_KEY"]
    if not url.endswith("/v1"):
        raise SystemExit("EARLYWARN_URL is the API's base URL and ends in /v1")
    people = participants_from(path)
    as_of = os.environ.get("EARLYWARN_AS_OF")  # scores for today unless you score past data, as this demo does
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        for start in range(0, len(people), 1000):  # at most 1,000 participants per request
            body = {"participants": people[start : start + 1000]} | ({"as_of": as_of} if as_of else {})
            scored = call(client, "/risk-scores", body)
            for r in scored["results"]:
                shown = f"risk {r['risk']:.2f} ({r['band']})" if r["status"] == "scored" else f"no score: {r['reason']}"
                print(f"{r['participant_id']}: {r['status']}, {shown}")
                if r.get("escalate"):  # the care team follows up, then says what it did
                    feedback = {"alert_id": r["escalation"]["alert_id"], "action": "contacted", "note": "ticket 123"}
                    print("  feedback:", json.dumps(call(client, "/escalations/feedback", feedback)))
        if os.environ.get("EARLYWARN_REPORT_EVENT"):  # `participant_id,date`: an event your clinicians confirmed
            pid, day = os.environ["EARLYWARN_REPORT_EVENT"].split(",")
            stored = call(client, "/outcomes", {"outcomes": [{"participant_id": pid, "date": day, "event": "relapse"}]})
            print(f"outcome stored ({stored['new']} new)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "days.csv")
