"""The API's default response class."""

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class JSONBody(JSONResponse):
    """JSON written by orjson. A `JSONResponse` so that FastAPI documents each route's reply
    with its model (it shows any other response class as a string)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
