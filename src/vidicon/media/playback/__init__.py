"""Recorded playback mechanisms: fragments split into samples, samples muxed for MSE.

:mod:`.samples` reads init segments and cuts indexed fragments into samples
without decoding; :mod:`.mse` muxes the samples a playback session sends into
one ``moof`` + ``mdat`` per frame on a timeline that never goes backwards.
The session logic (pacing, seeking, stepping) lives in ``services/playback.py``.
"""
