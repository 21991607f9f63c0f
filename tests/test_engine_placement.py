"""Where a rank's vLLM engine core runs (mmreason.engines.vllm.engine_placement and cpu_threads_bind): pure choices,
checked here without vLLM; the placements themselves run in tests/engines (the vLLM virtualenv)."""

from mmreason.engines.vllm import cpu_threads_bind, engine_placement


def test_alone_without_a_process_group():
    assert engine_placement(False, 1) == "alone"
    assert engine_placement(False, 4) == "alone"


def test_joins_the_trainer_world_with_one_device_per_engine():
    assert engine_placement(True, 1) == "trainer-world"


def test_own_process_when_one_engine_spans_several_devices():
    # external-launcher mode would make a tensor-parallel group's ranks generate the same prompts
    assert engine_placement(True, 2) == "own-process"


def test_cpu_threads_bind_gives_each_local_rank_a_disjoint_share():
    assert cpu_threads_bind("auto", 0, 2, cores=[0, 1]) == "0"
    assert cpu_threads_bind("auto", 1, 2, cores=[0, 1]) == "1"
    assert cpu_threads_bind("auto", 0, 1, cores=[0, 1, 2, 3]) == "0,1,2,3"
    assert cpu_threads_bind("0-1", 1, 2, cores=[0, 1]) == "0-1"
