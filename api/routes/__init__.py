"""The API's routers, one per area: operations, discovery, replay, extracts, audit."""
