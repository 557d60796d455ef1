"""An offline, faithful local stand-in for the part of Stripe's API the storefront uses.

The storefront never imports this package; it talks to it over HTTP with the official
`stripe` SDK. See docs/stripe-sandbox.md.
"""
