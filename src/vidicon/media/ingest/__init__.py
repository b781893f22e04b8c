"""Sources: threads that demux (never decode) and publish packets to a hub."""
