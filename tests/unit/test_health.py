from vllm_companion.health import MAX_REPETITION_PENALTY, THRESHOLD, WINDOW_S, LoopHealth


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
