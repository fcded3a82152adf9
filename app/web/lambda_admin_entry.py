"""Lambda entry point of the admin pages: the HTTP API's ``/admin`` routes.

Its own function and IAM role, the only web role that may change premium
memberships, write the audit trail and edit the catalog (docs/deploy.md).
The app is built at import, during Lambda's init phase, like the viewer's
(:mod:`app.web.lambda_entry`); it serves ``/admin`` alone.
"""

from __future__ import annotations

from app.web import create_app
from app.web.lambda_adapter import lambda_handler

app = create_app(pages="admin")
handler = lambda_handler(app)
