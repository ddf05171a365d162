from vllm_companion.repetition import MAX_REPETITION_PENALTY, THRESHOLD, WINDOW_S, LoopHealth


def test_penalties_rise_after_repeated_loops_and_stay_bounded() -> None:
    now = [0.0]
    health = LoopHealth(clock=lambda: now[0])
    for _ in range(THRESHOLD - 1):
        health.record("m")
    assert health.penalties("m", 1.1) == {}
    health.record("m")
    first = health.penalties("m", 1.1)
    assert first["repetition_penalty"] > 1.1 and first["frequency_penalty"] > 0
    for _ in range(50):
        health.record("m")
    assert health.penalties("m", 1.1)["repetition_penalty"] == MAX_REPETITION_PENALTY
    assert health.penalties("other", 1.1) == {}
    now[0] = WINDOW_S + 1
    assert health.penalties("m", 1.1) == {}
    assert health.total["m"] == THRESHOLD + 50


def test_every_loop_reaches_the_listener_with_its_total() -> None:
    seen: list[tuple[str, int]] = []
    health = LoopHealth(on_loop=lambda model, total: seen.append((model, total)))
    health.record("m")
    health.record("m")
    health.record("n")
    assert seen == [("m", 1), ("m", 2), ("n", 1)]
