"""The reference for `make bench`: bare Starlette + uvicorn around the same bundle and scoring core, no auth, no log."""

from __future__ import annotations

import argparse
from typing import Any

import bentoml
import torch
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from earlywarn.serving.results import assemble, score
from earlywarn.serving.schema import score_request_model
from earlywarn.training.bundle import ModelBundle


def app_for(model_tag: str) -> Starlette:
    bundle = ModelBundle.load(bentoml.models.get(model_tag).path)
    request_model = score_request_model(bundle.features)
    torch.set_num_threads(1)  # as the service's scoring thread

    async def risk_scores(request: Request) -> JSONResponse:
        req: Any = request_model.model_validate_json(await request.body())
        rows = [
            (p.participant_id, [(d.date, [getattr(d, f) for f in bundle.features]) for d in p.days]) for p in req.participants
        ]
        as_of = [req.as_of] * len(rows)
        results, _, _ = score(bundle, assemble(rows, len(bundle.features), as_of))
        return JSONResponse({"results": results})

    return Starlette(routes=[Route("/v1/risk-scores", risk_scores, methods=["POST"])])


if __name__ == "__main__":
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--model-tag", required=True)
    args.add_argument("--port", type=int, required=True)
    a = args.parse_args()
    uvicorn.run(app_for(a.model_tag), host="127.0.0.1", port=a.port, log_level="warning", access_log=False)
