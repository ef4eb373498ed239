"""HX-MLOps's model and dataset sharing APIs (Atos-Research-and-Innovation/HX-MLOps), answered
by Harmonia's registry with their payloads (`shapes`) and routes (`routes`), behind Harmonia's
keys: ``POST /api/v1/model`` (multipart), ``GET /api/v1/model/by_id/{id}``,
``GET /api/v1/model/{id}/data``, ``GET /api/v1/model_catalog``, ``DELETE /api/v1/model/{id}``
and their dataset twins.

What differs is kept on purpose: a request needs a domain key (HX-MLOps has no
authentication); ``version=latest`` resolves (HX-MLOps compared the word literally, so it
never matched); an uploaded ``version`` is a label, unique within its model, while the number
is the server's; ``{id}`` names a model or dataset, not one row of one version.
"""
