package dev.simkit.cardhost.bench;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Keeps the credit benchmark runnable (its checks fail on any wrong response); figures come from main(). */
class CreditBenchTest {
    @Test
    void everyMeasureRunsAndReportsARate() {
        assertTrue(CreditBench.getStatus(0.05) > 0);
        assertTrue(CreditBench.initiateReissue(0.05) > 0);
        assertTrue(CreditBench.debit(0.05) > 0);
        assertTrue(CreditBench.grantRounds(0.05) > 0);
        assertTrue(CreditBench.echo(0.05) > 0);
    }
}
