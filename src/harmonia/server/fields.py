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

INT32_MAX = 2**31 - 1
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$"
"""Names of models, services, instances and metrics: 1-128 letters, digits, ``. _ : + -``,
starting with a letter or digit (they appear in URLs, topics and CSV headers)."""
APP_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""Application names are stricter: they name broker topics, exchanges and data folders."""
NO_NUL = r"^[^\x00]*$"

Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=128)]
AppName = Annotated[str, Field(pattern=APP_NAME_PATTERN, max_length=64)]
# Numbers are strict: the schema says number, so "2" and true are refused, not converted.
Version = Annotated[int, Field(ge=1, le=INT32_MAX, strict=True)]
Finite = Annotated[float, Field(allow_inf_nan=False, strict=True)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
# Free text of bounded length, without NUL.
Label = Annotated[str, Field(max_length=32, pattern=NO_NUL)]
ShortText = Annotated[str, Field(min_length=1, max_length=128, pattern=NO_NUL)]
Detail = Annotated[str, Field(max_length=500, pattern=NO_NUL)]
Reason = Annotated[str, Field(max_length=2000, pattern=NO_NUL)]


# Path parameters: out of range is a 422 that names the parameter, never a 500 from the driver.
ActionId = Annotated[int, Path(ge=1, le=INT32_MAX)]
VersionPath = Annotated[int, Path(ge=1, le=INT32_MAX)]
