"""Recorded footage served by time range: ranged MP4s and HLS VOD playlists.

:mod:`.assemble` makes the byte plan of an MP4 for any time range from the
index (a fresh init segment plus patched fragments) and reads byte ranges of
it; :mod:`.boxes` reads and rewrites the MP4 boxes; :mod:`.hls_vod` writes
VOD playlists whose segments are byte ranges of those MP4s. Nothing here
knows HTTP or the database.
"""
