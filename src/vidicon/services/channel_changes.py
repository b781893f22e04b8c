"""Channel changes made by a user: the rights they need and the audit trail.

:class:`~vidicon.services.channels.ChannelService` does the changes and
knows nothing of who asks (start-up and simulated cameras use it directly).
Every API surface changes channels through this service instead, so the
right is checked in one place for all of them: the Settings right to create,
replace, delete, enable or disable a channel (configuration), the Control
right to start or stop manual recording (operating a camera, like PTZ or a
relay). Each change is a ``settingsChanged`` audit entry naming the action
and the channel, never the settings themselves (they may hold a camera
password).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from vidicon.base.errors import Forbidden
from vidicon.core.channel import ChannelSettings, ChannelView
from vidicon.core.rights import Right
from vidicon.services.audit import SETTINGS_CHANGED, Actor, AuditService
from vidicon.services.auth import User
from vidicon.services.channels import ChannelService


class ChannelChanges:
    def __init__(
        self,
        channels: ChannelService,
        audit: AuditService,
        on_deleted: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self.channels = channels
        self.audit = audit
        self.on_deleted = on_deleted  # e.g. device control forgets the camera

    async def create(
        self, actor: Actor, settings: ChannelSettings, channel_id: int | None = None
    ) -> ChannelView:
        user = _user(actor)
        user.require(Right.SETTINGS)
        if not user.is_admin and user.channels is not None:
            # The new channel would be outside what this user may see.
            raise Forbidden("a user limited to some channels cannot add channels")
        view = await self.channels.create(settings, channel_id)
        await self._audit(actor, "channelCreated", view)
        return view

    async def replace(
        self, actor: Actor, channel_id: int, settings: ChannelSettings
    ) -> ChannelView:
        _changer(actor, channel_id)
        view = await self.channels.replace(channel_id, settings)
        await self._audit(actor, "channelUpdated", view)
        return view

    async def delete(self, actor: Actor, channel_id: int) -> None:
        _changer(actor, channel_id)
        view = await self.channels.get(channel_id)
        await self.channels.delete(channel_id)
        if self.on_deleted is not None:
            await self.on_deleted(channel_id)
        await self._audit(actor, "channelDeleted", view)

    async def set_enabled(self, actor: Actor, channel_id: int, enabled: bool) -> ChannelView:
        _changer(actor, channel_id)
        view = await self.channels.set_enabled(channel_id, enabled)
        await self._audit(actor, "channelEnabled" if enabled else "channelDisabled", view)
        return view

    async def set_manual(self, actor: Actor, channel_id: int, on: bool) -> ChannelView:
        _user(actor).require(Right.CONTROL)
        _user(actor).require_channel(channel_id)
        view = await self.channels.set_manual(channel_id, on)
        await self._audit(actor, "manualRecordingOn" if on else "manualRecordingOff", view)
        return view

    async def _audit(self, actor: Actor, action: str, view: ChannelView) -> None:
        await self.audit.record(
            SETTINGS_CHANGED, actor, channel_id=view.id, action=action, name=view.name
        )


def _user(actor: Actor) -> User:
    if actor.user is None:
        raise Forbidden("sign in to change channels")
    return actor.user


def _changer(actor: Actor, channel_id: int) -> User:
    """The user changing ``channel_id``: Settings right and access to the channel."""
    user = _user(actor)
    user.require(Right.SETTINGS)
    user.require_channel(channel_id)
    return user
