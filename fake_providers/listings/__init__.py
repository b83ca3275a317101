"""Model listings in each provider's own shape, all drawn from the built-in catalogue."""
