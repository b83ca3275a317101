"""``POST /v1/chat/completions``: the Chat Completions ingress."""
