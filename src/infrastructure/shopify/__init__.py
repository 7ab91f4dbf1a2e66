"""Shopify adapters: signatures, OAuth and tokens, Admin GraphQL client, fake Shopify."""
