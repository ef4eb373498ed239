"""What a field of a request may hold, checked at the edge so the store can always take it.

Every integer that reaches a 32-bit column is range-checked (PostgreSQL's ``integer`` holds
up to 2,147,483,647; SQLite would take more, but one rule for both keeps a batch that one
backend stores from failing on the other). Names of models, services, instances and metrics
follow one character set; free text refuses NUL, which PostgreSQL cannot store in text.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field

from harmonia.core.application import APP_NAME_PATTERN, NAME_PATTERN, AppName, Name

__all__ = ["APP_NAME_PATTERN", "NAME_PATTERN", "AppName", "Name"]

INT32_MAX = 2**31 - 1
NO_NUL = r"^[^\x00]*$"
TRACE_ID_PATTERN = r"^[0-9A-Za-z_.:-]{1,64}$"
"""Trace ids: a W3C trace id (32 hex digits) or any id of up to 64 such characters."""

TraceId = Annotated[str, Field(pattern=TRACE_ID_PATTERN, max_length=64)]
# Numbers are strict: the schema says number, so "2" and true are refused, not converted.
Version = Annotated[int, Field(ge=1, le=INT32_MAX, strict=True)]
Finite = Annotated[float, Field(allow_inf_nan=False, strict=True)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
# Free text of bounded length, without NUL.
Label = Annotated[str, Field(max_length=32, pattern=NO_NUL)]
ShortText = Annotated[str, Field(min_length=1, max_length=128, pattern=NO_NUL)]
Detail = Annotated[str, Field(max_length=500, pattern=NO_NUL)]
#: the longest reason or note the API takes; the columns that keep one hold at least this
REASON_MAX_CHARS = 2000
Reason = Annotated[str, Field(max_length=REASON_MAX_CHARS, pattern=NO_NUL)]


# Path parameters: out of range is a 422 that names the parameter, never a 500 from the driver.
ActionId = Annotated[int, Path(ge=1, le=INT32_MAX)]
VersionPath = Annotated[int, Path(ge=1, le=INT32_MAX)]
