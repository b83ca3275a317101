"""Redis connections: the client the gateway uses and the embedded server it can start."""
