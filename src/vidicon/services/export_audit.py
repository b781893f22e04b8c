"""What an export task leaves behind: its export record and its audit-log lines.

Every task that starts is recorded with its submitter, recipient and purpose,
and completed with how it ended and the files handed out with their MD5.
(Moved here from ``services/export.py``.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vidicon.db.exports import AuditEntry
from vidicon.services.audit import EXPORT_FINISHED, EXPORT_STARTED, Actor

if TYPE_CHECKING:
    from vidicon.services.export_task import ExportTask


async def record_start(task: ExportTask) -> None:
    """The export record and the audit line of a task that starts."""
    service, user, request = task.service, task.user, task.request
    entry = AuditEntry(
        task.id, user.id, user.username, request.client, list(task.channels),
        request.start_us, request.end_us, request.submitter, request.recipient,
        request.purpose, request.password is not None, service.clock.now_us(),
    )  # fmt: skip
    await service.records.begin(entry)
    if service.audit is not None:
        await service.audit.record(
            EXPORT_STARTED, Actor(user, request.client), task=task.id,
            channels=list(task.channels), begin_us=request.start_us, end_us=request.end_us,
            submitter=request.submitter, recipient=request.recipient,
            purpose=request.purpose, encrypted=request.password is not None,
        )  # fmt: skip


async def record_end(task: ExportTask, result: str, files: list[dict[str, Any]]) -> None:
    """Completes the task's export record (``files``: what it handed out) and logs its end."""
    service = task.service
    await service.records.finish(task.id, result, files, service.clock.now_us())
    if service.audit is not None:
        await service.audit.record(
            EXPORT_FINISHED, Actor(task.user, task.request.client), task=task.id,
            result=result, files=len(files),
        )  # fmt: skip
