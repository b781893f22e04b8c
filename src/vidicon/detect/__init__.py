"""Analytics mechanisms on decoded frames: motion, objects, tracking, rules, plates.

No HTTP and no database here; services wire these to hubs and the event bus.
"""
