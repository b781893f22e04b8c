"""Notifiers: deliver events to MQTT, webhooks, e-mail and FTP.

Mechanisms only: each module speaks one protocol and raises on failure; the
retry policy (:mod:`vidicon.notify.delivery`) is shared, and the wiring to the
event bus lives in :mod:`vidicon.services.notifications`.
"""
