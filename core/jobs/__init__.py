"""Background work: one lifecycle (launch, liveness, cancel, progress, reaping) over the SQLite store."""
from core.jobs.lifecycle import (
                                 ACTIVE,
                                 STARTUP_DEADLINE_S,
                                 Job,
                                 active_jobs,
                                 dead_reason,
                                 finish,
                                 get,
                                 latest,
                                 mark_running,
                                 owner,
                                 pid_alive,
                                 progress,
                                 request_cancel,
                                 set_total,
                                 spawn,
                                 start,
                                 worker_main,
)

__all__ = ["ACTIVE", "STARTUP_DEADLINE_S", "Job", "active_jobs", "dead_reason", "finish", "get", "latest", "mark_running", "owner", "owner",
           "pid_alive", "progress", "request_cancel", "set_total", "spawn", "start", "worker_main"]
