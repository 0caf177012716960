package dev.simkit.cardhost.bench;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Keeps the benchmark runnable; the real figure comes from running its main(). */
class InJvmBenchTest {
    @Test
    void runsAndReportsARate() {
        assertTrue(InJvmBench.run(2_000, 16) > 0);
    }
}
