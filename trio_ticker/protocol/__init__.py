"""Sans-I/O client dialects: WebSocket frames to commands, values to frames (`full`: the trio-ticker protocol)."""
