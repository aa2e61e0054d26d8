"""`executor: ray`: each config entry (a pipeline with its rerank depths / sweep points) is a Ray
task, placed anywhere in the cluster by the resources its device needs.

Inside the task the entry runs exactly as the local executor runs it: `run_group` in a forkserver
worker under the entry's timeout and memory cap (so a crash, a timeout or a memory blow-up fails
that entry's pipelines, not the run), timed on the node that runs it. The task works in a private
node folder seeded with the nodes the driver already has (resume), and sends back the node files
it wrote; the driver saves them in its own results folder and builds every result from there, as
after a local run. So only the embedding cache (`--cache-dir`) needs to be shared between nodes,
and only to avoid encoding twice (docs/distributed.md). Before the entries run, the corpus
encodings they need are sharded over a Ray Data actor pool (ray_encode).
"""
from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from harness.config import Config
from harness.core import registry
from harness.core.context import RunContext
from harness.core.errors import HarnessError
from harness.core.types import Dataset
from harness.execution.isolation import WorkerOutcome, run_isolated
from harness.execution.plan import Pipeline
from harness.storage.atomic import atomic_path
from harness.storage.node_store import NodeStore

log = logging.getLogger(__name__)

# Enough for a corpus of a few hundred thousand passages and its runs; a local Ray otherwise
# reserves 30% of RAM in /dev/shm.
OBJECT_STORE_CAP_BYTES = 1 << 30


def import_ray():
    try:
        import ray
    except ImportError:
        raise HarnessError("executor: ray needs Ray: pip install 'retrieval-harness[ray]' "
                           "(or pip install 'ray[data]')") from None
    return ray


@contextmanager
def ray_session(address: Optional[str]) -> Iterator[object]:
    """Ray, connected for the run: the caller's session if one is open, else `address`, else a
    local Ray on this machine's cores (shut down afterwards, as is a connection the run made)."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        import psutil
        # Ray's memory monitor kills a task when the whole machine nears full, whoever uses the
        # memory; the entries' own memory_cap_mb is the limit here, as with the local executor.
        os.environ.setdefault("RAY_memory_monitor_refresh_ms", "0")
        # "local": always a new instance, never a `ray start` cluster found on this machine
        ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False,
                 log_to_driver=False,
                 object_store_memory=min(OBJECT_STORE_CAP_BYTES,
                                         psutil.virtual_memory().total // 5))
    try:
        yield ray
    finally:
        ray.shutdown()


def placement(device: str) -> dict:
    """Where the calling Ray task runs."""
    import ray
    context = ray.get_runtime_context()
    gpus = [str(g) for g in ray.get_gpu_ids()]
    return {"node_id": context.get_node_id(), "hostname": socket.gethostname(), "pid": os.getpid(),
            "device": device + (f" (gpu {','.join(gpus)})" if gpus else "")}


def task_resources(ctx: RunContext, cluster: dict, what: str) -> dict:
    """A task's resources: one GPU for a cuda device, else its thread count in CPUs (capped at
    the largest node's, so it can be placed). Oversubscribing cores would distort timings."""
    if ctx.device.startswith("cuda"):
        if not cluster.get("GPU"):
            raise HarnessError(f"{what}: device {ctx.device!r} but the Ray cluster has no GPU")
        return {"num_gpus": 1, "num_cpus": 1}
    return {"num_cpus": max(1, min(ctx.threads, int(cluster.get("max_node_cpus", 1))))}


def cluster_resources(ray) -> dict:
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return {"CPU": sum(n["Resources"].get("CPU", 0) for n in nodes),
            "GPU": sum(n["Resources"].get("GPU", 0) for n in nodes),
            "max_node_cpus": max((n["Resources"].get("CPU", 0) for n in nodes), default=0),
            "nodes": len(nodes)}


def _node_files(root: Path, keys: list[str]) -> dict[str, bytes]:
    """The saved files of these node keys (a node is complete with both)."""
    out = {}
    for key in keys:
        files = [root / f"{key}.trec", root / f"{key}.json"]
        if all(f.is_file() for f in files):
            out.update((f.name, f.read_bytes()) for f in files)
    return out


def group_keys(group: list[Pipeline]) -> list[str]:
    """The saved nodes a group reads or writes: its chains' nodes and end-to-end latencies."""
    keys = [n.key for p in group for n in p.leaf.chain()]
    return keys + [f"total-{p.leaf.key}" for p in group]


def group_task(config: Config, dataset: Dataset, ctx: RunContext, group: list[Pipeline],
               plugin_modules: list[str], sys_path: list[str], seeded: dict[str, bytes],
               timeout_s: Optional[float], cap_bytes: Optional[int], *earlier: dict) -> dict:
    """Runs on a Ray worker: one config entry in a forkserver worker under its limits.
    `earlier`: the replies of the entries that compute nodes this one shares (a fusion's
    inputs); Ray starts this task after them, and their nodes are reused, not recomputed."""
    from harness.api import offline_defaults
    from harness.execution.runner import run_group
    offline_defaults()
    wanted = set(group_keys(group))
    seeded = {**{name: data for reply in earlier for name, data in reply["files"].items()
                 if name.rsplit(".", 1)[0] in wanted}, **seeded}
    # The driver's import path (plugin modules beside a config, a test folder), where it exists.
    sys.path += [p for p in sys_path if p not in sys.path and os.path.isdir(p or ".")]
    where = placement(ctx.device)
    with tempfile.TemporaryDirectory(prefix="harness-ray-") as tmp:
        root = Path(tmp) / "nodes"
        root.mkdir()
        for name, data in seeded.items():
            (root / name).write_bytes(data)
        outcome = run_isolated(run_group, (config, dataset, ctx, root, group, plugin_modules),
                               timeout_s, cap_bytes)
        # What the worker saved before it stopped counts too, as in a local results folder.
        written = {p.name: p.read_bytes() for p in root.iterdir()
                   if p.name not in seeded and not p.name.startswith(".")}
    return {"outcome": outcome, "placement": where, "files": written}


def save_files(store: NodeStore, files: dict[str, bytes]) -> None:
    """Node files from a task into the driver's store: each run file before its JSON, which
    marks a node complete."""
    for name in sorted(files, key=lambda n: n.endswith(".json")):
        with atomic_path(store.root / name) as tmp:
            tmp.write_bytes(files[name])


def run_groups(config: Config, dataset: Dataset, ctx: RunContext, store: NodeStore,
               groups: list[list[Pipeline]]) -> list[tuple[WorkerOutcome, Optional[dict]]]:
    """Every group as a Ray task, all submitted at once; (outcome, placement) per group, in order.
    The task's node files are in `store` when this returns."""
    from harness.execution.ray_encode import encode_corpora
    from harness.execution.runner import group_limits
    with ray_session(config.ray_address) as ray:
        cluster = cluster_resources(ray)
        log.info("ray: %d node(s), %g CPU, %g GPU", cluster["nodes"], cluster["CPU"],
                 cluster["GPU"])
        encode_corpora(config, dataset, ctx, groups, cluster)
        remote = ray.remote(group_task)
        data_ref = ray.put(dataset)
        plugin_modules = registry.plugin_modules()
        pending = []
        producer: dict[str, int] = {}  # node key -> the first group that computes it
        for i, group in enumerate(groups):
            keys = group_keys(group)
            seeded = _node_files(store.root, keys)
            earlier = sorted({producer[k] for k in keys
                              if k in producer and f"{k}.json" not in seeded})
            for k in keys:
                producer.setdefault(k, i)
            options = task_resources(ctx, cluster, f"pipeline {group[0].group}")
            if group_limits(config, group)[1]:  # reserve the cap where the task is placed
                options["memory"] = group_limits(config, group)[1]
            pending.append(remote.options(
                max_retries=0, scheduling_strategy="SPREAD", name=f"harness:{group[0].group}",
                **options).remote(config, data_ref, ctx, group, plugin_modules, list(sys.path),
                                  seeded, *group_limits(config, group),
                                  *(pending[j] for j in earlier)))
        # A node's address as the cluster knows it (`--node-ip-address`), not a guess made on it.
        addresses = {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes()}
        out = []
        for group, ref in zip(groups, pending):
            try:
                reply = ray.get(ref)
            except Exception as exc:  # the task itself died (node lost, worker killed)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                out.append((WorkerOutcome(failure=f"ray task failed: {type(exc).__name__}: "
                                          f"{first}"), None))
                continue
            save_files(store, reply["files"])
            where = reply["placement"]
            out.append((reply["outcome"], {**where, "ip": addresses.get(where["node_id"])}))
    return out
