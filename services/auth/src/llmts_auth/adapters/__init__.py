"""Adapters of the auth service: Mongo repositories, the password hasher, the JOSE signer, OAuth clients."""
