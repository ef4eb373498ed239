"""The API's routes, one `APIRouter` per resource."""
