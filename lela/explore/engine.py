"""The points on Dask ``distributed``: a local cluster of worker processes on this machine, or an
existing cluster's scheduler (``--address``).

Why Dask and not Ray: ``distributed`` is pure Python (no native daemon, a small install beside
NumPy), a local cluster is one call, an existing cluster is ``dask scheduler`` and ``dask
worker`` on any machine with the same checkout, and :func:`distributed.as_completed` gives
each result the moment it exists, which is what the cache and the progress bar need. Each point
is one task, one worker process with one thread: a bitstream build keeps one core busy.
"""

import contextlib
import logging
import os
import signal
import sys
import threading

__all__ = ["cluster", "run_tasks", "worker_count"]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: How long to wait for the scheduler at ``--address`` to answer.
CONNECT_TIMEOUT_S = 10

#: The local cluster's scheduler serves HTTP (health, and a dashboard when bokeh is installed)
#: on any free port: its default 8787 may belong to another cluster on the machine.
HTTP_ADDRESS = ":0"


@contextlib.contextmanager
def cluster(address=None, workers=None):
    """A ``(client, description)`` of the cluster to run on: the scheduler at ``address``, else
    a local cluster of ``workers`` processes (default: the machine's cores)."""
    from distributed import Client, LocalCluster

    from lela.checks import UserError
    if address:
        try:
            client = Client(address, timeout=f"{CONNECT_TIMEOUT_S}s")
        except (OSError, TimeoutError) as e:
            raise UserError(f"--address {address}: no Dask scheduler answers there ({e})") \
                from None
        with client:
            n = worker_count(client)
            yield client, f"the cluster at {address} ({n} worker{'s' * (n != 1)})"
        return
    workers = workers or os.cpu_count() or 1
    # Worker processes are spawned: they import lela from the interpreter's path, so put this
    # checkout first (an installed lela elsewhere would otherwise win).
    if sys.path[:1] != [ROOT]:
        sys.path.insert(0, ROOT)
    with _workers_ignore_ctrl_c():
        local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                             dashboard_address=HTTP_ADDRESS, silence_logs=logging.ERROR,
                             memory_limit=0)
    with local, Client(local) as client:
        yield client, f"a local cluster of {workers} worker process{'es' * (workers > 1)}"


@contextlib.contextmanager
def _workers_ignore_ctrl_c():
    """Ctrl-C reaches every process of the terminal's group: the client handles it (it cancels
    the tasks and closes the cluster), so the worker processes, spawned meanwhile, inherit
    SIGINT ignored instead of each printing a KeyboardInterrupt traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def worker_count(client):
    """The workers the scheduler knows (recent versions list only a few unless asked for all)."""
    try:
        info = client.scheduler_info(n_workers=-1)
    except TypeError:                   # distributed before n_workers: it lists them all
        info = client.scheduler_info()
    return len(info.get("workers", {}))


def run_tasks(client, payloads, on_result, progress=True):
    """Submit every ``(tag, payload)`` to :func:`lela.explore.measure.measure_point` and call
    ``on_result(tag, result)`` as each completes (in completion order). A task whose worker
    died (distributed retries it on another first) gives an ``error`` result per measurement.
    Ctrl-C cancels what is still queued or running."""
    from distributed import as_completed

    from lela.explore.measure import measure_point
    futures = {}
    for tag, payload in payloads:
        future = client.submit(measure_point, payload, pure=False,
                               key=f"lela-point-{tag}-{os.urandom(4).hex()}")
        futures[future] = (tag, payload)
    bar = _bar(len(futures), progress)
    failed = 0
    try:
        for future in as_completed(list(futures)):
            tag, payload = futures[future]
            try:
                result = future.result()
            except Exception as e:      # the worker died (KilledWorker), the task vanished,
                # or the scheduler could not unpickle it (it imports lela too)
                reason = " ".join(f"{type(e).__name__}: {e}".split())
                result = {name: {"status": "error", "reason": reason}
                          for name in payload["todo"]}
            failed += any(r["status"] != "ok" for r in result.values())
            on_result(tag, result)
            bar.update(1)
            bar.set_postfix(failed=failed, refresh=False)
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        bar.close()


def _bar(total, enabled):
    from tqdm import tqdm
    return tqdm(total=total, desc="points", unit="point", disable=not enabled, leave=True,
                file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
