"""The HTTP API: its dependencies (`deps`), one router per resource (`routes`), gathered in
`main.api_router`, which `harmonia.server.app.create_app` mounts."""

#: the prefix of the API's versioned routes
API = "/api/v1"
