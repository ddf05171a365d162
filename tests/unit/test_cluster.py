"""Models bigger than one GPU (issue 12): tensor parallel on one host, tensor x pipeline parallel
across the hosts of a declared inventory (vLLM's Ray backend), and a fleet's replicas split over a
host's GPUs. Injected facts; the command lines are the real builders'."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vllm_companion.engine.command import build_command
from vllm_companion.engine.fleet import plan_fleet
from vllm_companion.engine.planning.cluster import (
    BadInventory,
    ClusterPlan,
    load_inventory,
    parse_inventory,
    plan_cluster,
)
from vllm_companion.engine.planning.hardware import Gpu
from vllm_companion.engine.planning.plan import NoFit
from vllm_companion.engine.router import ROUTER_POLICY, router_command

LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"


def inventory(*hosts: tuple[str, int, int], used: int = 0) -> dict[str, object]:
    """(GPU name, GPUs, MiB each) per host."""
    return {"hosts": [{"name": f"h{i}", "address": f"10.0.0.{i + 1}",
                       "gpus": [{"name": name, "total_mib": mib, "used_mib": used} for _ in range(count)]}
                      for i, (name, count, mib) in enumerate(hosts)]}


def test_70b_on_two_a100_80gb_is_tensor_parallel_on_one_host() -> None:
    found = plan_cluster(parse_inventory(inventory(("A100", 2, 81920))), LLAMA_70B)
    assert isinstance(found, ClusterPlan)
    plan = found.plan
    assert (plan.tensor_parallel, plan.pipeline_parallel, plan.max_model_len) == (2, 1, 16384)
    assert "weights 65.70 GiB" in plan.arithmetic  # 70.55B x 2 bytes / 2 GPUs
    argv = build_command(plan, 8000, plan.model).argv
    assert argv[argv.index("--tensor-parallel-size") + 1] == "2" and "--pipeline-parallel-size" not in argv


def test_across_hosts_the_pipeline_spans_hosts_on_ray() -> None:
    found = plan_cluster(parse_inventory(inventory(("L4", 2, 23034), ("L4", 2, 23034))),
                         "Qwen/Qwen2.5-Coder-32B-Instruct")
    assert isinstance(found, ClusterPlan)
    assert (found.plan.tensor_parallel, found.plan.pipeline_parallel) == (2, 2)
    argv = build_command(found.plan, 8000, found.plan.model).argv
    assert argv[argv.index("--pipeline-parallel-size") + 1] == "2"
    assert argv[argv.index("--distributed-executor-backend") + 1] == "ray"
    commands = found.commands()
    assert commands[0] == "h0: ray start --head --port 6379"
    assert commands[1] == "h1: ray start --address 10.0.0.1:6379" and "engine start" in commands[2]


def test_the_smallest_layout_wins_and_memory_short_steps_the_context_down() -> None:
    roomy = plan_cluster(parse_inventory(inventory(("A100", 4, 81920))), "Qwen/Qwen2.5-Coder-32B-Instruct")
    assert isinstance(roomy, ClusterPlan) and roomy.plan.tensor_parallel == 1  # one 80 GB GPU holds 32B
    busy = plan_cluster(parse_inventory(inventory(("A100", 2, 81920), used=9000)), LLAMA_70B)
    assert isinstance(busy, ClusterPlan) and busy.plan.max_model_len < 16384  # less free: less context


def test_a_model_that_fits_nowhere_is_refused_with_the_arithmetic() -> None:
    found = plan_cluster(parse_inventory(inventory(("L4", 2, 23034), ("L4", 2, 23034))), LLAMA_70B)
    assert isinstance(found, NoFit) and "does not fit on 4 GPUs" in found.why and "GiB short per GPU" in found.why


@pytest.mark.parametrize("bad", [
    {}, {"hosts": []}, {"hosts": [{"address": "10.0.0.1", "gpus": []}]},
    {"hosts": [{"gpus": [{"total_mib": 1000}]}]},  # no address
    {"hosts": [{"address": "a b", "gpus": [{"total_mib": 1000}]}]},
    {"hosts": [{"address": "x", "gpus": [{"total_mib": "80GB"}]}]},
    {"hosts": [{"address": "x", "gpus": [{"total_mib": 1000, "used_mib": 2000}]}]},
])
def test_bad_inventories_get_a_clear_error(bad: object) -> None:
    with pytest.raises(BadInventory):
        parse_inventory(bad)


def test_inventory_files_are_read_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text(json.dumps(inventory(("A100", 1, 81920))) + " " * (70 << 10))
    with pytest.raises(BadInventory, match="larger than"):
        load_inventory(big)
    with pytest.raises(BadInventory, match="cannot read"):
        load_inventory(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(BadInventory):
        load_inventory(tmp_path / "bad.json")


def test_a_fleet_splits_the_gpus_between_replicas_behind_a_loopback_router() -> None:
    gpus = [Gpu(i, "A100", 81920, 81000) for i in range(4)]
    fleet = plan_fleet(gpus, {}, 2, ["http://10.0.0.9:8000/"])
    assert fleet.devices == ("0,1", "2,3")
    assert [p.tensor_parallel for p in fleet.replicas] == [2, 2]
    assert len({p.port for p in fleet.replicas}) == 2 and all(p.host == "127.0.0.1" for p in fleet.replicas)
    argv = router_command(fleet.router, [*fleet.local_urls, *fleet.remote], "key").argv
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--policy") + 1] == ROUTER_POLICY == "consistent_hash"
    assert argv[argv.index("--worker-urls") + 3] == "http://10.0.0.9:8000"
    assert "key" not in argv  # the key is for probes and replicas, never on a command line
    cpu = plan_fleet([], {"device": "cpu"}, 2, [])
    assert cpu.devices == (None, None) and all(p.device == "cpu" for p in cpu.replicas)
