"""Scale benchmark for the storefront: `python -m bench --profile quick|full` (see docs/scale.md)."""
