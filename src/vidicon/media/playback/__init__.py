"""Recorded playback mechanisms: fragments split into samples, samples muxed for MSE.

:mod:`.samples` reads init segments and cuts indexed fragments into samples
without decoding; :mod:`.mse` muxes the samples a playback session sends into
one ``moof`` + ``mdat`` per frame on a timeline that never goes backwards.
The session logic lives in ``services/playback_session.py``; its clock in
:mod:`.pacing`, where its seeks and steps land in :mod:`.positioning`.
"""
