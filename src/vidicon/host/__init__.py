"""Facts about the machine Vidicon runs on: hardware, load, disk health.

Mechanisms only (Linux procfs/sysfs, psutil, ``smartctl``); they know
nothing of HTTP or of any vendor's names. ``services/system.py`` uses them.
"""
