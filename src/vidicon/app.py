"""Composition root: builds mechanisms and services and runs their lifecycle."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from vidicon.config import Config
from vidicon.core.channel import ChannelSettings, StreamSettings
from vidicon.core.clock import SYSTEM_CLOCK, Clock
from vidicon.db.database import Database
from vidicon.db.event_backups import EventBackupIndex
from vidicon.db.events import EventStore
from vidicon.db.exports import ExportRecords
from vidicon.db.leases import SegmentLeases
from vidicon.db.recordings import RecordingIndex
from vidicon.db.timeline import TimelineIndex
from vidicon.db.vod import VodQueries
from vidicon.services.api_keys import ApiKeyService
from vidicon.services.audit import AuditService
from vidicon.services.auth import AuthService
from vidicon.services.channel_changes import ChannelChanges
from vidicon.services.channels import ChannelService
from vidicon.services.event_backup import EventBackupService
from vidicon.services.events import EventService
from vidicon.services.export import ExportService
from vidicon.services.live import LiveService
from vidicon.services.live_hls import LiveHlsService
from vidicon.services.playback import PlaybackService
from vidicon.services.playback_media import PlaybackMediaService
from vidicon.services.recordings import RecordingService
from vidicon.services.restream import RestreamService
from vidicon.services.runtime import Runtime
from vidicon.services.sign_in import SignInService
from vidicon.services.snapshots import SnapshotService
from vidicon.services.timeline import TimelineService
from vidicon.services.users import UserService
from vidicon.services.vod import VodService
from vidicon.services.webrtc import WebRtcService
from vidicon.storage.reconcile import ReconcileReport, reconcile
from vidicon.storage.retention import Retention
from vidicon.storage.segments import SegmentStore

log = logging.getLogger(__name__)


@dataclass
class Vidicon:
    config: Config
    clock: Clock = field(default=SYSTEM_CLOCK)
    setup_secret: str | None = None
    reconcile_report: ReconcileReport | None = None

    def __post_init__(self) -> None:
        data_dir = self.config.storage.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        data_dir.chmod(0o700)  # footage and the database are private
        self.data_dir = data_dir
        self.db = Database(self.config.db_url)
        self.index = RecordingIndex(self.db)
        self.store = SegmentStore(data_dir, self.index)
        self.retention = Retention(
            data_dir, self.index, min_free_bytes=self.config.storage.min_free_bytes
        )
        self.runtime = Runtime(self.config, self.clock, self.store, self.retention)
        self.auth = AuthService(self.db, self.clock, self.config.auth)
        self.events = EventService(EventStore(self.db), self.clock)
        self.channels = ChannelService(self.db, self.runtime, self.clock)
        self.audit = AuditService(self.events, self.clock, ExportRecords(self.db))
        self.sign_in = SignInService(self.auth, self.audit)
        self.users = UserService(self.db, self.auth, self.audit)
        self.api_keys = ApiKeyService(self.db, self.auth, self.audit)
        self.channel_changes = ChannelChanges(self.channels, self.audit)
        self.recordings = RecordingService(data_dir, self.index)
        self.timeline = TimelineService(TimelineIndex(self.db), self.channels.ids)
        self.live = LiveService(self.runtime, self.config.live)
        self.vod = VodService(self.runtime, self.index, VodQueries(self.db), self.clock)
        self.restream = RestreamService(self.config, self.auth, self.live, self.clock)
        self.hls = LiveHlsService(self.live, self.config.live)
        self.snapshots = SnapshotService(self.live, self.config.live)
        self.playback_media = PlaybackMediaService(data_dir, self.index, self.channels)
        self.exports = ExportService(
            data_dir, self.db, self.channels, self.playback_media, self.clock, audit=self.audit
        )
        self.event_backups = EventBackupService(
            data_dir, EventBackupIndex(self.db), SegmentLeases(self.db), self.index, self.channels,
            self.playback_media, self.clock,
        )  # fmt: skip
        self.playback = PlaybackService(data_dir, self.index)
        self.webrtc = WebRtcService(self.live, self.config.live)

    async def start(self) -> None:
        await self.db.migrate()
        await self.events.start()
        self.reconcile_report = await reconcile(self.data_dir, self.index, self.clock.now_us())
        log.info("start-up reconcile: %s", self.reconcile_report)
        self.setup_secret = await self.auth.bootstrap(
            os.environ.get("VIDICON_ADMIN_USER"), os.environ.get("VIDICON_ADMIN_PASSWORD")
        )
        if self.config.simulated_cameras and not await self.channels.ids():
            for number in range(1, self.config.simulated_cameras + 1):
                await self.channels.create(
                    ChannelSettings(
                        name=f"Simulated camera {number}",
                        main=StreamSettings(url="sim://camera?width=640&height=360&fps=15"),
                        sub=None,
                    )
                )
        else:
            await self.channels.start_all()
        await self.event_backups.start()
        await self.exports.start()
        self.runtime.start_retention()
        await self.restream.start()

    async def stop(self) -> None:
        await self.exports.stop()
        await self.event_backups.stop()
        await self.playback.close_all()
        await self.restream.stop()
        await self.webrtc.stop()
        await self.hls.stop()
        await self.runtime.shutdown()
        await self.events.stop()
        await self.db.close()
