"""Staff single sign-on through each institution's own OpenID Connect provider (Entra ID, Okta,
Keycloak...), on allauth's socialaccount framework.

- ``config``: the administrator's settings (``accounts.models.SingleSignOn``), the secret
  encrypted, the provider's discovery document checked before anything is saved.
- ``provider``: allauth's OpenID Connect provider, with what it leaves out: every ID token's
  signature is checked against the provider's JWKS (allauth skips it for tokens fetched from
  the token endpoint), its issuer must be the configured one, and it must carry the nonce sent
  with this very sign-in (each nonce is good once).
- ``adapter``: who may come in. Only an existing, active staff account of this institution whose
  address is confirmed here and which the provider vouches for (``email_verified``), inside the
  allowed domains. Nobody is ever created (no patient, no staff) and an unconfirmed local account
  is never linked (the account pre-hijacking rule of invitations, issue 9 item 1).
- ``stage``: the second factor. The authenticator app is still asked for, unless the
  administrator chose to trust the provider's and the ID token says one was used (amr "mfa" or
  a listed acr): the hospital's own MFA then counts, once, for that session.
"""
