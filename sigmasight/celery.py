from __future__ import annotations

import os

from celery import Celery
from celery.backends.redis import RedisBackend
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sigmasight.settings.base")


class RedisResultBackend(RedisBackend):
    """Celery's Redis result backend, minus the result-channel subscription on every send.

    Stock Celery subscribes to a task's result channel when the task is sent, with the backend's
    patient retry policy (20 attempts a second apart): with Redis down, sending a task blocked
    the web for ~19 s before failing. Nothing here waits for a result in the process that sent
    the task; `AsyncResult.get()` still subscribes by itself (and reads a result stored before
    it did), so results work exactly as before. Workers never subscribed on send anyway.
    """

    def on_task_call(self, producer, task_id):
        return None


app = Celery("sigmasight")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def blas_threads_limit(threads: int | None = None) -> list[dict]:
    """Limit this process's BLAS and OpenMP pools to `threads` (default the setting
    SIGMASIGHT_WORKER_BLAS_THREADS, 1): a prefork child shares the machine's cores with its
    siblings, and each running numpy with every core's threads made the batched regressions
    2-8x slower on a loaded machine. Returns threadpoolctl's view of the pools after."""
    from django.conf import settings
    from threadpoolctl import threadpool_info, threadpool_limits

    limit = threads if threads is not None else settings.SIGMASIGHT_WORKER_BLAS_THREADS
    threadpool_limits(limits=limit)  # kept for the process's life (no context manager)
    return threadpool_info()


@worker_process_init.connect
def _worker_process_init(**kwargs: object) -> None:
    """Each worker process (a prefork child) takes its BLAS thread limit from the worker, not
    from the user's environment."""
    blas_threads_limit()


@worker_init.connect
def _worker_init(**kwargs: object) -> None:
    """The worker's own process too: the solo and threads pools run tasks in it, and prefork
    children forked from it start with its limit before their own init sets it again."""
    blas_threads_limit()
