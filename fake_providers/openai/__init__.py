"""The OpenAI dialect: Chat Completions, model listing, errors and headers."""
