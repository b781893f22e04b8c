"""HTTP and WebSocket surfaces: translation only, no decisions."""
