"""The HTTP edge of the web service.

`app` (the app factory and pages), `api` (app keys, errors, JSON input), `customer_api`
(the chat page, widget and in-app pane), `staff_api`, `live_api` (live chat), `schemas`
(the pydantic models of every JSON body), `openapi` (the route registry, and the
document at /api/openapi.json generated from it and the models), `ratelimit`, `identity`
(the in-app identity token, and the seal the action server checks) and the assets in
`static/`. The domain below (`bot/*.py`) never imports from here; the command line starts it.
"""
