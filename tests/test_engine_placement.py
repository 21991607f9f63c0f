"""Where a rank's vLLM engine core runs (engine_placement, cpu_threads_bind) and its log filter: pure choices,
checked here without vLLM; the placements themselves run in tests/engines (the vLLM virtualenv)."""

from mmreason.engines.vllm import cpu_threads_bind, engine_placement


def test_alone_without_a_process_group():
    assert engine_placement(False, 1) == "alone"
    assert engine_placement(False, 4) == "alone"


def test_joins_the_trainer_world_with_one_device_per_engine():
    assert engine_placement(True, 1) == "trainer-world"


def test_own_process_when_one_engine_spans_several_devices_or_when_asked():
    # external-launcher mode would make a tensor-parallel group's ranks generate the same prompts
    assert engine_placement(True, 2) == "own-process"
    assert engine_placement(True, 1, own_process=True) == "own-process"
    assert engine_placement(False, 1, own_process=True) == "alone"  # no trainer to keep apart from


def test_cpu_threads_bind_gives_each_local_rank_a_disjoint_share():
    assert cpu_threads_bind("auto", 0, 2, cores=[0, 1]) == "0"
    assert cpu_threads_bind("auto", 1, 2, cores=[0, 1]) == "1"
    assert cpu_threads_bind("auto", 0, 1, cores=[0, 1, 2, 3]) == "0,1,2,3"
    assert cpu_threads_bind("0-1", 1, 2, cores=[0, 1]) == "0-1"


def test_the_repeated_thread_warning_is_logged_once(caplog):
    import logging

    from mmreason.engines.vllm import quiet_repeated_thread_warning

    logger = logging.getLogger("vllm.v1.worker.cpu_worker")
    quiet_repeated_thread_warning()
    quiet_repeated_thread_warning()  # a second engine adds no second filter
    with caplog.at_level(logging.WARNING, logger=logger.name):
        for _ in range(5):
            logger.warning("CPU backend doesn't allow to use `torch.set_num_threads` after the thread binding, skip it.")
        logger.warning("libtcmalloc is not found in LD_PRELOAD")
    messages = [r.getMessage() for r in caplog.records]
    assert sum("set_num_threads" in m for m in messages) == 1
    assert "libtcmalloc is not found in LD_PRELOAD" in messages  # other warnings pass
