"""Live outputs: hub readers that turn packets into what a viewer consumes."""
