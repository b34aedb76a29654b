"""One package per provider: client.py (HTTP only), mapping.py (pure functions from raw JSON to
normalized dataclasses), provider.py (glue). Each __init__ registers its Provider class."""
