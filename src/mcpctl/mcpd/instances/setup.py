"""Build the supervisor and its runtimes from settings (called by ``create_app`` only)."""

from __future__ import annotations

import os

from mcpctl.mcpd.db.uow import UnitOfWorkFactory
from mcpctl.mcpd.instances.logs import LogBook
from mcpctl.mcpd.instances.supervisor import Limits, Supervisor, owner_id
from mcpctl.mcpd.runtime.base import Runtime
from mcpctl.mcpd.runtime.docker import DockerRuntime
from mcpctl.mcpd.runtime.external import ExternalRuntime
from mcpctl.mcpd.runtime.process import ProcessRuntime, basic_env
from mcpctl.mcpd.services.secrets import SecretBehaviour
from mcpctl.mcpd.settings import Settings


def limits_of(settings: Settings) -> Limits:
    return Limits(
        idle_seconds=settings.instance_idle_seconds,
        max_instances=settings.max_instances,
        start_timeout=settings.instance_start_timeout_seconds,
        stop_grace=settings.instance_stop_grace_seconds,
        backoff_initial=settings.instance_backoff_initial_seconds,
        backoff_max=settings.instance_backoff_max_seconds,
        crash_loop_restarts=settings.instance_crash_loop_restarts,
        crash_loop_window=settings.instance_crash_loop_window_seconds,
    )


def build_supervisor(
    settings: Settings, uows: UnitOfWorkFactory, secrets: SecretBehaviour
) -> Supervisor:
    """The supervisor with the process, docker and external runtimes (docker connects to its
    engine on first use)."""
    owner = owner_id(settings.data_dir)
    runtimes: dict[str, Runtime] = {
        "process": ProcessRuntime(settings.data_dir, basic_env(os.environ)),
        "docker": DockerRuntime(owner, settings.docker_host),
        "external": ExternalRuntime(),
    }
    logs = LogBook(
        settings.data_dir / "logs" / "servers",
        max_lines=settings.instance_log_lines,
        max_bytes=settings.instance_log_file_bytes,
        backups=settings.instance_log_file_backups,
    )
    return Supervisor(uows, secrets, runtimes, logs, owner=owner, limits=limits_of(settings))
