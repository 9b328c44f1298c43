"""What the pages tell auth.js so a browser can sign in: OpenID Connect authorization code + PKCE against
OIDC_ISSUER (locally the local issuer) as the public client STOREFRONT_OIDC_CLIENT_ID.

The endpoints are not here: auth.js reads them from the issuer's discovery document, as for any provider.
"""

from __future__ import annotations

from fusion.auth import STAFF_SCOPES
from fusion.config import settings

CALLBACK_PATH = "/auth/callback"  # the page that takes the code; registered at the provider as <origin>/auth/callback
SCOPE = "openid"


def browser_oidc_config() -> dict[str, str]:
    """The JSON a page carries in `<script type="application/json" id="fusion-oidc">` for `auth.configure`.

    redirectUri is a path: the browser resolves it on the page's own origin, which keeps the sign-in state
    in that origin's sessionStorage. scopeClaim and staffScopes let auth.js tell staff from customers as
    fusion.auth does (for display only: the API decides).
    """
    config = settings()
    # Set outside development: check_service_secrets stops the storefront at boot without it.
    assert config.storefront_oidc_client_id is not None
    return {
        "issuer": config.oidc_issuer,
        "clientId": config.storefront_oidc_client_id,
        "redirectUri": CALLBACK_PATH,
        "scope": SCOPE,
        "scopeClaim": config.oidc_scope_claim,
        "staffScopes": " ".join(STAFF_SCOPES),
    }
