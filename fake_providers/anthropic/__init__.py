"""The Anthropic Messages dialect under `/anthropic/v1`."""
