"""The database schema.

Times are UTC integer microseconds (``*_us``). Media lives in files; the
database holds only the index that lets any time range be served by byte
ranges, plus configuration and users. Every statement goes through SQLAlchemy
Core so the same code runs on SQLite (embedded default) and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Single row: which migrations have been applied.
schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
)

# Small key/value settings: the hashed one-time setup secret, the server id.
settings = sa.Table(
    "settings",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Users of every API surface. Passwords are Argon2 hashes, never plain text.
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    # Comma-separated right names (vidicon.core.rights); migration 6.
    sa.Column("rights", sa.String(255), nullable=False, server_default=""),
    sa.Column("created_us", sa.BigInteger, nullable=False),
)

# Bearer tokens for the native API; only a SHA-256 of the token is stored.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("expires_us", sa.BigInteger, nullable=True),
)

# Browser sessions (HttpOnly cookie). Only a SHA-256 of the session id is
# stored; logout and password changes delete the rows, so a stolen cookie dies
# with them.
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("expires_us", sa.BigInteger, nullable=False),
)

# Optional per-channel access: a user with no rows here sees every channel;
# a user with rows sees only those channels. Administrators see everything.
user_channels = sa.Table(
    "user_channels",
    metadata,
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("channel_id", sa.Integer, primary_key=True, autoincrement=False),
)

# Channels (cameras). ``config`` holds the validated, credential-free settings
# (stream URLs, recording mode, schedule, retention); ``credentials`` holds the
# camera login, kept apart so that no response can include it by accident.
channels = sa.Table(
    "channels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("credentials", sa.JSON, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
)

# One row per segment file. The id is the integer file id the APIs expose.
# ``state`` is 'open' while the recorder appends, 'closed' after; an open row
# left by a crash is repaired on start. ``run_start_us`` groups contiguous
# segments: a new run means a gap before it. ``locked`` footage is never
# deleted by retention.
segments = sa.Table(
    "segments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("channel_id", sa.Integer, nullable=False),
    sa.Column("stream", sa.String(8), nullable=False),  # 'main' | 'sub'
    sa.Column("kind", sa.String(8), nullable=False),  # normal | manual | alarm | event
    sa.Column("state", sa.String(8), nullable=False),  # open | closed
    sa.Column("locked", sa.Boolean, nullable=False, default=False),
    sa.Column("run_start_us", sa.BigInteger, nullable=False),
    sa.Column("start_us", sa.BigInteger, nullable=False),
    sa.Column("end_us", sa.BigInteger, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("init_size", sa.Integer, nullable=False),
    sa.Column("path", sa.String(512), nullable=False, unique=True),  # relative to data dir
    sa.Column("codecs", sa.String(64), nullable=False),  # RFC 6381, e.g. avc1.64001f,mp4a.40.2
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Index("ix_segments_stream_time", "channel_id", "stream", "start_us"),
    sa.Index("ix_segments_kind_time", "kind", "start_us"),
    # Covers the timeline queries (days, minutes, spans by kind: db/timeline.py)
    # so they read the index alone, never the table rows.
    sa.Index(
        "ix_segments_timeline", "channel_id", "stream", "start_us", "end_us", "kind", "run_start_us"
    ),
    sqlite_autoincrement=True,  # file ids are never reused
)

# One row per fragment (one GOP, a moof+mdat pair) inside a segment file.
fragments = sa.Table(
    "fragments",
    metadata,
    sa.Column("segment_id", sa.ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("start_us", sa.BigInteger, nullable=False),
    sa.Column("duration_us", sa.Integer, nullable=False),
    sa.Column("keyframe", sa.Boolean, nullable=False, default=True),
)

# Files whose rows are gone and which are about to be unlinked. A crash between
# the row deletion and the unlink leaves the path here; start-up finishes it.
pending_deletes = sa.Table(
    "pending_deletes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
)

# Event backups (TS-API ``PUT /api/event-videos/trigger``): one row per
# trigger. ``tasks`` and ``comment`` are kept as the client sent them (PTZ
# tasks annotated with what was done); ``start_us``/``end_us`` is the range
# copied (pre-alarm to post-alarm). ``state``: pending (waiting for the
# post-alarm footage), copying, done, partial, failed. Until it is done, a
# backup holds its footage with segment leases (holder ``event-backup:<id>``).
event_backups = sa.Table(
    "event_backups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("channel_id", sa.Integer, nullable=False),
    sa.Column("timestamp_us", sa.BigInteger, nullable=False),
    sa.Column("title", sa.String(256), nullable=False),
    sa.Column("comment", sa.JSON, nullable=True),
    sa.Column("tasks", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("start_us", sa.BigInteger, nullable=False),
    sa.Column("end_us", sa.BigInteger, nullable=False),
    sa.Column("finished_us", sa.BigInteger, nullable=True),
    sa.Index("ix_event_backups_state", "state"),
    sqlite_autoincrement=True,  # event ids are never reused
)

# The files an event backup writes, one per channel, under the event storage
# directory (``path`` relative to it, unique: it is the file's URL too).
# ``state``: pending, done, failed (``error`` says why).
event_backup_files = sa.Table(
    "event_backup_files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("backup_id", sa.ForeignKey("event_backups.id", ondelete="CASCADE"), nullable=False),
    sa.Column("channel_id", sa.Integer, nullable=False),
    sa.Column("path", sa.String(512), nullable=False, unique=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("stream", sa.String(8), nullable=True),
    sa.Column("size", sa.BigInteger, nullable=True),
    sa.Column("error", sa.String(512), nullable=True),
    sa.Index("ix_event_backup_files_backup", "backup_id"),
)

# Who exported what, when, for whom and why (TS-API ``dataExport``: submitter,
# recipient, purpose), how it ended, and every file handed out with its size
# and MD5. Not tied to ``users`` by a foreign key: the record outlives the user.
export_audit = sa.Table(
    "export_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("task_id", sa.String(36), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("client", sa.String(64), nullable=False),
    sa.Column("channels", sa.JSON, nullable=False),  # [1, 2, 3]
    sa.Column("start_us", sa.BigInteger, nullable=False),
    sa.Column("end_us", sa.BigInteger, nullable=False),
    sa.Column("submitter", sa.Text, nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("encrypted", sa.Boolean, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("finished_us", sa.BigInteger, nullable=True),
    sa.Column("result", sa.String(16), nullable=True),  # done | canceled | timeout | ...
    sa.Column("files", sa.JSON, nullable=False),  # [{name, channel, size, md5, start_us, end_us}]
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Index("ix_export_audit_created", "created_us"),
)

# Leases that keep segments from retention while something reads them (an
# export in progress). Taking a lease sets ``segments.locked``; ``owner`` marks
# the lease that set it, which clears it again when it goes, unless another
# lease still holds the segment (that one becomes the owner). Footage already
# locked otherwise (by hand) is leased without ownership and stays locked.
# ``holder`` names the user of the lease (``export:<task id>``); leases left
# by a crash are released on start.
segment_leases = sa.Table(
    "segment_leases",
    metadata,
    sa.Column("holder", sa.String(64), primary_key=True),
    sa.Column(
        "segment_id",
        sa.ForeignKey("segments.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("owner", sa.Boolean, nullable=False),
    sa.Index("ix_segment_leases_segment", "segment_id"),
)

# Everything that happened: motion, objects, rules, plates, emergency calls,
# dashcam driving events, camera and recording status, system log and audit
# entries (vidicon.core.events). ``end_us`` is null while an event lasts.
# ``label`` is the searchable text of the kind (a plate number, an object
# type); ``attributes`` the rest as JSON; ``images`` paths relative to the
# event image directory. Ids are never reused.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("channel_id", sa.Integer, nullable=True),
    sa.Column("begin_us", sa.BigInteger, nullable=False),
    sa.Column("end_us", sa.BigInteger, nullable=True),
    sa.Column("label", sa.String(64), nullable=True),
    sa.Column("attributes", sa.JSON, nullable=False),
    sa.Column("images", sa.JSON, nullable=False),
    sa.Index("ix_events_begin", "begin_us"),
    sa.Index("ix_events_kind_begin", "kind", "begin_us"),
    sa.Index("ix_events_channel_begin", "channel_id", "begin_us"),
    sa.Index("ix_events_label", "label"),
    sqlite_autoincrement=True,
)

# Licence plate sources (recognising devices, or channels with a reader),
# registered the first time one of their plates is seen, so each keeps its
# number for good (TS-API lprSrc ids and carNo's src=). ``code`` is the
# device code, or ``CH<n>`` for a channel's own reader; ``linked`` the
# channels its latest plate named. How far the register has read the events
# is the setting ``lpr_sources_read_to``.
lpr_sources = sa.Table(
    "lpr_sources",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("code", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("channel_id", sa.Integer, nullable=True),
    sa.Column("linked", sa.JSON, nullable=False),
)
