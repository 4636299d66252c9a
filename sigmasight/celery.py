from __future__ import annotations

import os

from celery import Celery
from celery.backends.redis import RedisBackend

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
