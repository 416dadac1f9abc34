"""The HTTP edge of the web service.

`app` (the app factory and pages), `api` (app keys, errors, JSON input), `customer_api`
(the chat page, widget and in-app pane), `staff_api`, `live_api` (live chat),
`openapi` (the document at /api/openapi.json), `ratelimit`, `identity` (the in-app
identity token, and the seal the action server checks) and the assets in `static/`.
The domain below (`bot/*.py`) never imports from here; the command line starts it.
"""
