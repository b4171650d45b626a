"""The web console: sign in, see the services, create, deploy, roll back, pause, resume and
delete them, in a browser. Pages are rendered on the server (Jinja2) with a little htmx; every
asset is served by Baepo (no internet needed).

The console is a client of Baepo's own API, in the same process (`client.py`): it imports no
room of Baepo's, and what a person sees and may do is what the API answers to her token
(`sessions.py`). Its routes (`routes.py`) are added to the API app by the composition root.
"""

from baepo.console.routes import console_routes

__all__ = ["console_routes"]
