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
from vidicon.db.lpr_sources import LprSourceRegister
from vidicon.db.recordings import RecordingIndex
from vidicon.db.timeline import TimelineIndex
from vidicon.db.usage import UsageQueries
from vidicon.db.vod import VodQueries
from vidicon.services.analytics_objects import ObjectAnalyticsService
from vidicon.services.api_keys import ApiKeyService
from vidicon.services.audit import AuditService
from vidicon.services.auth import AuthService
from vidicon.services.channel_changes import ChannelChanges
from vidicon.services.channel_status import ChannelStatusService
from vidicon.services.channels import ChannelService
from vidicon.services.device_control import DeviceControlService
from vidicon.services.event_access import EventAccess
from vidicon.services.event_backup import EventBackupService
from vidicon.services.event_intake import EventIntake
from vidicon.services.event_search import EventSearch
from vidicon.services.events import EventService
from vidicon.services.export import ExportService
from vidicon.services.face_search import FaceSearch
from vidicon.services.live import LiveService
from vidicon.services.live_hls import LiveHlsService
from vidicon.services.motion import MotionService
from vidicon.services.notifications import NotificationService
from vidicon.services.playback import PlaybackService
from vidicon.services.playback_media import PlaybackMediaService
from vidicon.services.recordings import RecordingService
from vidicon.services.restream import RestreamService
from vidicon.services.runtime import Runtime
from vidicon.services.sign_in import SignInService
from vidicon.services.snapshots import SnapshotService
from vidicon.services.status_feed import StatusFeed
from vidicon.services.system import SystemService
from vidicon.services.table_exports import TableExportService
from vidicon.services.timeline import TimelineService
from vidicon.services.users import UserService
from vidicon.services.vod import VodService
from vidicon.services.webrtc import WebRtcService
from vidicon.storage.event_images import IMAGE_DIR, EventImages
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
        self.device_control = DeviceControlService(self.channels, self.runtime)
        # A deleted channel's camera connection and presets go with it.
        self.channel_changes.on_deleted = self.device_control.forget
        self.event_backups = EventBackupService(
            data_dir, EventBackupIndex(self.db), SegmentLeases(self.db), self.index, self.channels,
            self.playback_media, self.clock, goto_preset=self.device_control.goto_preset,
        )  # fmt: skip
        self.playback = PlaybackService(data_dir, self.index)
        self.webrtc = WebRtcService(self.live, self.config.live)
        self.notifications = NotificationService(
            self.config, self.events, self.channels, self.snapshots, data_dir / IMAGE_DIR
        )
        self.system = SystemService(
            self.config, data_dir, UsageQueries(self.db), self.retention, self.clock
        )
        self.channel_status = ChannelStatusService(self.channels, self.runtime)
        self.objects = ObjectAnalyticsService(self.events, data_dir, self.clock)
        self.event_access = EventAccess(self.events, self.runtime)
        self.event_intake = EventIntake(self.events, self.clock)
        self.status_feed = StatusFeed(
            self.runtime, self.retention, self.events, self.clock, data_dir,
            self.config.storage.min_free_bytes,
        )  # fmt: skip
        self.motion = MotionService(
            self.runtime, self.events, self.index, self.clock,
            objects=self.objects, images=EventImages(data_dir),
        )  # fmt: skip
        self.event_images = EventImages(data_dir)
        self.event_search = EventSearch(
            self.events, LprSourceRegister(self.db, self.events.store), self.event_images
        )
        self.table_exports = TableExportService(data_dir)
        self.face_search = FaceSearch(self.event_search)

    async def start(self) -> None:
        await self.db.migrate()
        await self.events.start()
        await self.notifications.start()
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
        self.table_exports.sweep()
        self.runtime.start_retention()
        await self.motion.start()
        await self.restream.start()
        await self.status_feed.start()

    async def stop(self) -> None:
        await self.status_feed.stop()
        await self.exports.stop()
        await self.event_backups.stop()
        await self.playback.close_all()
        await self.restream.stop()
        await self.webrtc.stop()
        await self.device_control.close()
        await self.hls.stop()
        await self.motion.stop()
        await self.runtime.shutdown()
        await self.notifications.stop()
        await self.objects.stop()
        await self.events.stop()
        await self.db.close()
