"""Token-level preference environments (single and natively batched) and their registry."""
